#include <catch2/catch.hpp>

#include <Eigen/Core>

#include "optim/sgd.h"

// Parameters and gradients live in heap vectors, as in fedsim's runs: with a
// one- or two-float array on the stack, GCC's -Warray-bounds flags the
// vectorised paths of Eigen's loops that this size never takes.

TEST_CASE("sgd: momentum and weight decay follow the PyTorch recurrence", "[optim]") {
  // w0 = 1, grad = 0.5 each step, lr 0.1, momentum 0.9, wd 0.1:
  // step 1: g = 0.5 + 0.1*1 = 0.6, v = 0.6, w = 1 - 0.06 = 0.94
  // step 2: g = 0.5 + 0.094 = 0.594, v = 0.9*0.6 + 0.594 = 1.134, w = 0.94 - 0.1134 = 0.8266
  fedsim::Sgd sgd(0.9f, 0.1f);
  sgd.Reset(1);
  Eigen::VectorXf w = Eigen::VectorXf::Constant(1, 1.0f);
  const Eigen::VectorXf g = Eigen::VectorXf::Constant(1, 0.5f);
  sgd.Step(w.data(), g.data(), 1, 0.1f);
  CHECK(w[0] == Approx(0.94f));
  sgd.Step(w.data(), g.data(), 1, 0.1f);
  CHECK(w[0] == Approx(0.8266f));
  sgd.Reset(1);  // a new client starts with zero velocity
  w[0] = 1.0f;
  sgd.Step(w.data(), g.data(), 1, 0.1f);
  CHECK(w[0] == Approx(0.94f));
}

TEST_CASE("sgd: plain step", "[optim]") {
  fedsim::Sgd sgd(0.0f, 0.0f);
  sgd.Reset(2);
  Eigen::VectorXf w(2), g(2);
  w << 1.0f, -2.0f;
  g << 0.5f, 1.0f;
  sgd.Step(w.data(), g.data(), 2, 0.2f);
  CHECK(w[0] == Approx(0.9f));
  CHECK(w[1] == Approx(-2.2f));
}
