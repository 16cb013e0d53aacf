#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "core/numerics.h"

int main(int argc, char** argv) {
  fedsim::InitNumerics();
  return Catch::Session().run(argc, argv);
}
