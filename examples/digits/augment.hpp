// Training-time augmentation of the 8x8 digits: each image gets its own small
// random affine warp (rotation, scale, sub-pixel shift about the centre),
// resampled bilinearly with zeros outside the image. With only ~1,260 training
// images the MLP otherwise fits the training batches exactly (loss 0) early
// on; the warps keep the loss informative and make the embedding generalise.
// Stronger warps (whole-pixel shifts, rotations of 10 degrees) hurt: at 8x8 a
// pixel is an eighth of the digit.
#pragma once

#include "dataset.hpp"

#include <cmath>
#include <random>

namespace digits {

struct WarpOptions {
  float max_rotation_degrees = 5.0f;
  float max_scale_change = 0.05f;  // scale in [1 - x, 1 + x]
  float max_shift_pixels = 0.25f;  // per axis
};

// A warped copy of every row of `images` (N x 64, row-major 8x8 images).
inline Matrix random_warp(const Matrix& images, const WarpOptions& options, std::mt19937& rng) {
  constexpr int kSide = 8;
  constexpr float kCentre = 3.5f;
  constexpr float kRadiansPerDegree = 3.14159265f / 180.0f;
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  Matrix out(images.rows(), images.cols());
  for (Index r = 0; r < images.rows(); ++r) {
    const float angle = uniform(rng) * options.max_rotation_degrees * kRadiansPerDegree;
    const float scale = 1.0f + uniform(rng) * options.max_scale_change;
    const float shift_x = uniform(rng) * options.max_shift_pixels;
    const float shift_y = uniform(rng) * options.max_shift_pixels;
    const float cos_a = std::cos(angle) / scale, sin_a = std::sin(angle) / scale;
    auto pixel = [&](int y, int x) {
      return (x < 0 || x >= kSide || y < 0 || y >= kSide) ? 0.0f : images(r, y * kSide + x);
    };
    for (int i = 0; i < kSide; ++i) {
      for (int j = 0; j < kSide; ++j) {
        // The inverse warp: where in the source image output pixel (i, j) comes from.
        const float x = static_cast<float>(j) - kCentre - shift_x;
        const float y = static_cast<float>(i) - kCentre - shift_y;
        const float source_x = cos_a * x + sin_a * y + kCentre;
        const float source_y = -sin_a * x + cos_a * y + kCentre;
        const int x0 = static_cast<int>(std::floor(source_x));
        const int y0 = static_cast<int>(std::floor(source_y));
        const float fx = source_x - static_cast<float>(x0), fy = source_y - static_cast<float>(y0);
        out(r, i * kSide + j) = (1 - fy) * ((1 - fx) * pixel(y0, x0) + fx * pixel(y0, x0 + 1)) +
                                fy * ((1 - fx) * pixel(y0 + 1, x0) + fx * pixel(y0 + 1, x0 + 1));
      }
    }
  }
  return out;
}

}  // namespace digits
