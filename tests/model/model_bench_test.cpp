#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "model/model_bench.h"

// bench-model measures; these only check that it runs every kind of input
// (image, tokens, flat) on 1 and 2 threads and reports a positive rate.
TEST_CASE("bench-model: trains on generated data and reports a positive rate", "[model]") {
  struct Case {
    const char* kind;
    int64_t params;
  };
  for (const Case& c : {Case{"cnn_lenet", 44426}, Case{"niid_cifar_cnn", 62006},
                        Case{"leaf_shakespeare_lstm", 817872}, Case{"mlp", 199210}}) {
    for (int threads : {1, 2}) {
      fedsim::ModelBenchSpec spec;
      spec.model.kind = c.kind;
      if (spec.model.kind == "mlp") spec.model.hidden = {200, 200};
      fedsim::SetBenchInput(spec);
      spec.batch = 4;
      spec.samples = 6;  // a short last batch too
      spec.threads = threads;
      spec.min_seconds = 0.0;
      const auto r = fedsim::MeasureModelTraining(spec);
      INFO(c.kind << " threads " << threads);
      CHECK(r.num_params == c.params);
      CHECK(r.threads == threads);
      CHECK(r.epochs >= threads);
      CHECK(r.samples == r.epochs * 6);
      CHECK(r.samples_per_second > 0.0);
      CHECK(r.gflops > 0.0);
      CHECK(r.train_flops_per_sample > 0.0);
      CHECK(std::isfinite(r.final_loss));
    }
  }
}

TEST_CASE("bench-model: an unknown kind is an input error", "[model]") {
  fedsim::ModelBenchSpec spec;
  spec.model.kind = "sequential";
  CHECK_THROWS_AS(fedsim::SetBenchInput(spec), fedsim::InputError);
}
