// The concrete algorithms. Each is created by name in registry.cpp.
#pragma once

#include "fl/algorithm.h"

namespace fedsim {

class FedAvg : public Algorithm {
 public:
  explicit FedAvg(const AlgorithmConfig& cfg) : server_lr_(static_cast<float>(cfg.server_lr)) {}
  std::string name() const override { return "fedavg"; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) const override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload, int round) override;

 private:
  float server_lr_;
};

class FedSgd : public Algorithm {
 public:
  explicit FedSgd(const AlgorithmConfig& cfg) : server_lr_(static_cast<float>(cfg.server_lr)) {}
  std::string name() const override { return "fedsgd"; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) const override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload, int round) override;

 private:
  float server_lr_;
};

}  // namespace fedsim
