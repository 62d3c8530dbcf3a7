// The UCI optical digits as a float matrix plus labels: CSV loading with
// errors that name the file, line and field, and a seeded stratified split.
#pragma once

#include <contrastive/contrastive.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace digits {

using contrastive::Index;
using contrastive::LabelVector;
using Matrix = contrastive::RowMatrix<float>;

struct Dataset {
  Matrix pixels;      // N x 64, values 0..16
  LabelVector labels; // N digits 0..9
};

constexpr int kPixels = 64;
constexpr int kClasses = 10;

// One line: 64 pixels in 0..16, then the label in 0..9, comma-separated.
inline Dataset load_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open digits file '" + path + "'");
  std::vector<float> pixels;
  std::vector<contrastive::Label> labels;
  std::string line;
  Index line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(line_number) + ": ";
    std::istringstream fields(line);
    std::string field;
    int column = 0;
    while (std::getline(fields, field, ',')) {
      char* end = nullptr;
      const long value = std::strtol(field.c_str(), &end, 10);
      if (field.empty() || end != field.c_str() + field.size()) {
        throw std::runtime_error(where + "field " + std::to_string(column + 1) + " ('" + field +
                                 "') is not an integer");
      }
      if (column < kPixels) {
        if (value < 0 || value > 16) {
          throw std::runtime_error(where + "pixel " + std::to_string(column + 1) + " is " +
                                   std::to_string(value) + ", outside 0..16");
        }
        pixels.push_back(static_cast<float>(value));
      } else if (column == kPixels) {
        if (value < 0 || value >= kClasses) {
          throw std::runtime_error(where + "label is " + std::to_string(value) + ", outside 0..9");
        }
        labels.push_back(value);
      }
      ++column;
    }
    if (column != kPixels + 1) {
      throw std::runtime_error(where + "expected " + std::to_string(kPixels + 1) +
                               " comma-separated fields (64 pixels, then the label), found " +
                               std::to_string(column));
    }
  }
  if (labels.empty()) throw std::runtime_error("digits file '" + path + "' has no samples");
  Dataset data;
  const Index n = static_cast<Index>(labels.size());
  data.pixels = Eigen::Map<const Matrix>(pixels.data(), n, kPixels);
  data.labels = Eigen::Map<const LabelVector>(labels.data(), n);
  return data;
}

inline Dataset select_rows(const Dataset& data, const std::vector<Index>& rows) {
  Dataset out;
  out.pixels.resize(static_cast<Index>(rows.size()), data.pixels.cols());
  out.labels.resize(static_cast<Index>(rows.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    out.pixels.row(static_cast<Index>(i)) = data.pixels.row(rows[i]);
    out.labels(static_cast<Index>(i)) = data.labels(rows[i]);
  }
  return out;
}

// Each class is shuffled and cut at the same fraction, so both parts keep the
// class balance (as scikit-learn's train_test_split(stratify=y)).
inline void stratified_split(const Dataset& data, double test_fraction, std::mt19937& rng,
                             Dataset& train, Dataset& test) {
  std::vector<std::vector<Index>> by_class(kClasses);
  for (Index i = 0; i < data.labels.size(); ++i)
    by_class[static_cast<std::size_t>(data.labels(i))].push_back(i);
  std::vector<Index> train_rows, test_rows;
  for (auto& rows : by_class) {
    std::shuffle(rows.begin(), rows.end(), rng);
    const auto n_test = static_cast<std::size_t>(test_fraction * static_cast<double>(rows.size()) + 0.5);
    test_rows.insert(test_rows.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n_test));
    train_rows.insert(train_rows.end(), rows.begin() + static_cast<std::ptrdiff_t>(n_test), rows.end());
  }
  train = select_rows(data, train_rows);
  test = select_rows(data, test_rows);
}

}  // namespace digits
