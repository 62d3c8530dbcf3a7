// A 2-D PCA of embeddings and an SVG scatter plot of one or more of them side
// by side, coloured by label, with a legend. Plain text output, no dependency.
#pragma once

#include <contrastive/contrastive.hpp>

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace digits {

using Points2 = Eigen::Matrix<double, Eigen::Dynamic, 2, Eigen::RowMajor>;

// Projection of the centred rows onto the two leading principal axes. Each
// axis's sign is fixed (largest loading positive) so reruns draw the same picture.
template <class Derived>
Points2 pca_2d(const Eigen::MatrixBase<Derived>& X) {
  const Eigen::MatrixXd x = X.template cast<double>();
  if (x.rows() == 0) return Points2(0, 2);
  const Eigen::MatrixXd centred = x.rowwise() - x.colwise().mean();
  const Eigen::MatrixXd covariance = centred.transpose() * centred / static_cast<double>(x.rows());
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(covariance);
  const contrastive::Index d = x.cols();
  Eigen::MatrixXd axes = Eigen::MatrixXd::Zero(d, 2);
  // Eigenvalues come in increasing order; a 1-D input gets a zero second axis.
  for (contrastive::Index k = 0; k < std::min<contrastive::Index>(2, d); ++k) {
    Eigen::VectorXd axis = eigen.eigenvectors().col(d - 1 - k);
    contrastive::Index largest = 0;
    axis.cwiseAbs().maxCoeff(&largest);
    if (axis(largest) < 0) axis = -axis;
    axes.col(k) = axis;
  }
  return centred * axes;
}

struct ScatterPanel {
  std::string title;
  Points2 points;
  contrastive::LabelVector labels;  // 0..9
};

inline std::string xml_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Panels side by side, each scaled to fit its own points; a legend of the ten
// digit colours (matplotlib's "tab10") on the right.
inline void write_scatter_svg(const std::string& path, const std::string& heading,
                              const std::vector<ScatterPanel>& panels) {
  static const char* const colours[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  const double size = 400, gap = 30, top = 60, legend_width = 90;
  const double width = gap + static_cast<double>(panels.size()) * (size + gap) + legend_width;
  const double height = top + size + gap;
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write SVG file '" + path + "'");
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << gap << "\" y=\"24\" font-size=\"16\">" << xml_escape(heading) << "</text>\n";
  for (std::size_t k = 0; k < panels.size(); ++k) {
    const ScatterPanel& panel = panels[k];
    const double left = gap + static_cast<double>(k) * (size + gap);
    out << "<g>\n<text x=\"" << left << "\" y=\"" << top - 8 << "\" font-size=\"13\">"
        << xml_escape(panel.title) << "</text>\n"
        << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << size << "\" height=\"" << size
        << "\" fill=\"none\" stroke=\"#999\"/>\n";
    if (panel.points.rows() > 0) {
      const Eigen::RowVector2d lo = panel.points.colwise().minCoeff();
      const Eigen::RowVector2d hi = panel.points.colwise().maxCoeff();
      // One scale for both axes keeps distances honest; 5% padding.
      const double span = std::max({hi(0) - lo(0), hi(1) - lo(1), 1e-12});
      const double scale = 0.9 * size / span;
      const Eigen::RowVector2d centre = (lo + hi) / 2;
      for (contrastive::Index i = 0; i < panel.points.rows(); ++i) {
        const double x = left + size / 2 + scale * (panel.points(i, 0) - centre(0));
        const double y = top + size / 2 - scale * (panel.points(i, 1) - centre(1));
        const auto label = static_cast<std::size_t>(panel.labels(i)) % 10;
        out << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"2.5\" fill=\"" << colours[label]
            << "\" fill-opacity=\"0.8\"/>\n";
      }
    }
    out << "</g>\n";
  }
  const double legend_x = gap + static_cast<double>(panels.size()) * (size + gap);
  out << "<g font-size=\"13\">\n<text x=\"" << legend_x << "\" y=\"" << top + 10 << "\">digit</text>\n";
  for (int d = 0; d < 10; ++d) {
    const double y = top + 30 + 22 * d;
    out << "<circle cx=\"" << legend_x + 6 << "\" cy=\"" << y - 4 << "\" r=\"5\" fill=\"" << colours[d]
        << "\"/><text x=\"" << legend_x + 18 << "\" y=\"" << y << "\">" << d << "</text>\n";
  }
  out << "</g>\n</svg>\n";
  if (!out) throw std::runtime_error("error while writing SVG file '" + path + "'");
}

// Line plots side by side, one per series, over epochs 1..n (the x axis),
// each with its own y range; for the loss and held-out Recall@1 per epoch.
struct CurvePanel {
  std::string title;
  std::vector<double> values;  // one per epoch; NaN values are skipped
  std::string colour;
};

inline void write_curve_svg(const std::string& path, const std::string& heading, const std::vector<CurvePanel>& panels) {
  const double w = 420, h = 300, gap = 50, top = 60;
  const double width = gap + static_cast<double>(panels.size()) * (w + gap);
  const double height = top + h + gap;
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write SVG file '" + path + "'");
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << gap << "\" y=\"24\" font-size=\"16\">" << xml_escape(heading) << "</text>\n";
  for (std::size_t k = 0; k < panels.size(); ++k) {
    const CurvePanel& p = panels[k];
    const double left = gap + static_cast<double>(k) * (w + gap);
    double lo = 1e300, hi = -1e300;
    for (double v : p.values) {
      if (std::isnan(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (lo > hi) lo = hi = 0;
    const double span = std::max(hi - lo, 1e-12);
    const std::size_t n = p.values.size();
    out << "<g>\n<text x=\"" << left << "\" y=\"" << top - 8 << "\" font-size=\"13\">" << xml_escape(p.title)
        << "</text>\n<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << w << "\" height=\"" << h
        << "\" fill=\"none\" stroke=\"#999\"/>\n"
        << "<text x=\"" << left - 4 << "\" y=\"" << top + 10 << "\" font-size=\"10\" text-anchor=\"end\">" << hi
        << "</text>\n<text x=\"" << left - 4 << "\" y=\"" << top + h << "\" font-size=\"10\" text-anchor=\"end\">"
        << lo << "</text>\n<text x=\"" << left + w << "\" y=\"" << top + h + 14
        << "\" font-size=\"10\" text-anchor=\"end\">epoch " << n << "</text>\n<polyline fill=\"none\" stroke=\""
        << p.colour << "\" stroke-width=\"1.5\" points=\"";
    for (std::size_t e = 0; e < n; ++e) {
      if (std::isnan(p.values[e])) continue;
      const double x = left + (n > 1 ? w * static_cast<double>(e) / static_cast<double>(n - 1) : w / 2);
      const double y = top + h - 0.9 * h * (p.values[e] - lo) / span - 0.05 * h;
      out << x << ',' << y << ' ';
    }
    out << "\"/>\n</g>\n";
  }
  out << "</svg>\n";
  if (!out) throw std::runtime_error("error while writing SVG file '" + path + "'");
}

}  // namespace digits
