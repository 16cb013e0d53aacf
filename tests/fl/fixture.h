// A small federated setup for algorithm mechanics tests: Synthetic(1,1) data
// with 30 natural clients and a softmax model, plus one thread's scratch.
#pragma once

#include <memory>
#include <vector>

#include "core/config.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "fl/algorithms.h"
#include "model/model.h"

namespace fedsim::testing {

struct Fixture {
  Config cfg;
  FederatedData data;
  Partition part;
  std::unique_ptr<Model> model;
  TrainContext ctx;
  ClientScratch s;
  Eigen::VectorXf w0;

  explicit Fixture(const std::string& algorithm = "fedavg") {
    cfg.algorithm.name = algorithm;
    data = LoadData(cfg.data, 1);
    part = MakePartition(data.train, cfg.data.num_clients, cfg.data.partition, 1);
    model = CreateModel(cfg.model, data.train.dim(), data.train.num_classes);
    const int64_t p = model->num_params();
    const int chunk = 4096;
    s.ws = model->NewWorkspace(chunk);
    s.params.resize(p);
    s.grad.resize(p);
    s.grad_acc.resize(p);
    s.extra.resize(p);
    s.batch_x.resize(chunk, data.train.dim());
    s.batch_y.resize(chunk);
    ctx.model = model.get();
    ctx.train = &data.train;
    ctx.cfg = &cfg.algorithm;
    ctx.seed = 1;
    ctx.max_chunk = chunk;
    ctx.num_clients = cfg.data.num_clients;
    w0.resize(p);
    Rng init(5);
    model->Init(w0.data(), init);
  }

  int64_t p() const { return model->num_params(); }

  ClientTask Task(int client, float lr, int round = 0) const {
    ClientTask t;
    t.round = round;
    t.client = client;
    t.indices = &part[static_cast<size_t>(client)];
    t.lr = lr;
    return t;
  }

  // Mean loss and gradient of client k's full data at w.
  Eigen::VectorXf FullGradient(int client, const Eigen::VectorXf& w) {
    const auto& rows = part[static_cast<size_t>(client)];
    RowMatrix x(rows.size(), data.train.dim());
    data.train.Rows(rows.data(), static_cast<int>(rows.size()), x.data());
    std::vector<int> y;
    for (int r : rows) y.push_back(data.train.y[static_cast<size_t>(r)]);
    auto ws = model->NewWorkspace(static_cast<int>(rows.size()));
    Eigen::VectorXf g(p());
    model->LossAndGradient(w.data(), x.data(), y.data(), static_cast<int>(rows.size()), g.data(), *ws);
    return g;
  }
};

}  // namespace fedsim::testing
