#include <catch2/catch.hpp>

#include "optim/sgd.h"

TEST_CASE("sgd: momentum and weight decay follow the PyTorch recurrence", "[optim]") {
  // w0 = 1, grad = 0.5 each step, lr 0.1, momentum 0.9, wd 0.1:
  // step 1: g = 0.5 + 0.1*1 = 0.6, v = 0.6, w = 1 - 0.06 = 0.94
  // step 2: g = 0.5 + 0.094 = 0.594, v = 0.9*0.6 + 0.594 = 1.134, w = 0.94 - 0.1134 = 0.8266
  fedsim::Sgd sgd(0.9f, 0.1f);
  sgd.Reset(1);
  float w = 1.0f;
  const float g = 0.5f;
  sgd.Step(&w, &g, 1, 0.1f);
  CHECK(w == Approx(0.94f));
  sgd.Step(&w, &g, 1, 0.1f);
  CHECK(w == Approx(0.8266f));
  sgd.Reset(1);  // a new client starts with zero velocity
  w = 1.0f;
  sgd.Step(&w, &g, 1, 0.1f);
  CHECK(w == Approx(0.94f));
}

TEST_CASE("sgd: plain step", "[optim]") {
  fedsim::Sgd sgd(0.0f, 0.0f);
  sgd.Reset(2);
  float w[] = {1.0f, -2.0f};
  const float g[] = {0.5f, 1.0f};
  sgd.Step(w, g, 2, 0.2f);
  CHECK(w[0] == Approx(0.9f));
  CHECK(w[1] == Approx(-2.2f));
}
