// Multilayer perceptron with ReLU hidden layers and a softmax output, trained
// with cross-entropy. With no hidden layers it is softmax (multinomial
// logistic) regression.
//
// Parameter layout, layer by layer: W_l (fan_in x fan_out, column-major), then
// b_l (fan_out). Forward on a batch X (b x fan_in): Z = X W + 1 b^T.
#pragma once

#include "model/model.h"

namespace fedsim {

class Mlp : public Model {
 public:
  // sizes = {input_dim, hidden..., num_classes}
  Mlp(std::vector<int> sizes, double init_scale, std::string kind);

  std::string kind() const override { return kind_; }
  int64_t num_params() const override { return num_params_; }
  std::string Describe() const override;
  double TrainFlopsPerSample() const override;
  void Init(float* params, Rng& rng) const override;
  std::unique_ptr<Workspace> NewWorkspace(int max_batch) const override;
  double LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                         Workspace& ws) const override;
  EvalSums Evaluate(const float* params, const float* x, const int* y, int b, Workspace& ws) const override;
  // "layers.l.weight" and "layers.l.bias" for each dense layer l, in layout
  // order (as the layer engine names a Dense layer's tensors).
  std::vector<ParamRange> ParamRanges() const override;

  const std::vector<int>& sizes() const { return sizes_; }

  // Logits of the b rows of x (row-major b x input_dim): a b x num_classes
  // column-major matrix inside ws, valid until ws is used again.
  // REQUIRES: b <= the workspace's max_batch.
  const float* Logits(const float* params, const float* x, int b, Workspace& ws) const;

 private:
  class Ws;
  // Runs the forward pass; leaves the logits in ws.z.back().
  void Forward(const float* params, const float* x, int b, Ws& ws) const;

  std::vector<int> sizes_;
  std::vector<int64_t> w_offset_, b_offset_;
  int64_t num_params_ = 0;
  double init_scale_;
  std::string kind_;
};

}  // namespace fedsim
