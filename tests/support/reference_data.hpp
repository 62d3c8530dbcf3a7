// Reader for the reference data files written by tests/reference/refdata.py:
// named row-major arrays of doubles, produced once with PyTorch and committed.
#pragma once

#include <contrastive/contrastive.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace contrastive_test {

class ReferenceFile {
 public:
  // `name` is a file under tests/reference/data.
  explicit ReferenceFile(const std::string& name) {
    const std::string path = std::string(CONTRASTIVE_TEST_DATA_DIR) + "/" + name;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open reference data " + path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream header(line);
      std::string array_name;
      contrastive::Index rows = 0, cols = 0;
      if (!(header >> array_name >> rows >> cols)) throw std::runtime_error("bad header in " + path + ": " + line);
      contrastive::RowMatrix<double> m(rows, cols);
      for (contrastive::Index k = 0; k < rows * cols; ++k) {
        if (!(in >> m.data()[k])) throw std::runtime_error("truncated array " + array_name + " in " + path);
      }
      arrays_[array_name] = m;
    }
  }

  bool has(const std::string& name) const { return arrays_.count(name) != 0; }

  template <class Scalar = double>
  contrastive::RowMatrix<Scalar> matrix(const std::string& name) const {
    return get(name).template cast<Scalar>();
  }

  template <class Scalar = double>
  contrastive::Vector<Scalar> vector(const std::string& name) const {
    const contrastive::RowMatrix<double>& m = get(name);
    return Eigen::Map<const contrastive::Vector<double>>(m.data(), m.size()).template cast<Scalar>();
  }

  Eigen::VectorXi labels(const std::string& name) const { return vector<double>(name).cast<int>(); }

  double scalar(const std::string& name) const {
    const contrastive::RowMatrix<double>& m = get(name);
    if (m.size() != 1) throw std::runtime_error("array " + name + " is not a scalar");
    return m(0, 0);
  }

 private:
  const contrastive::RowMatrix<double>& get(const std::string& name) const {
    auto it = arrays_.find(name);
    if (it == arrays_.end()) throw std::runtime_error("no array named " + name + " in reference data");
    return it->second;
  }
  std::map<std::string, contrastive::RowMatrix<double>> arrays_;
};

}  // namespace contrastive_test
