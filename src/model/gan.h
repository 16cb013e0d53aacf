// The generator and discriminator of FedGAN (docs/algorithms.md#fedgan), and
// the quality figures of generated samples.
//
// Both networks are DenseNets: dense layers on one flat float32 parameter
// vector owned by the caller (layout as the mlp preset: W_l column-major fan_in x
// fan_out, then b_l), LeakyReLU hidden layers, and an output that is tanh
// (generator: pixels in [-1, 1]) or linear (discriminator: one logit).
// Activations are column-major b x width buffers in a per-thread workspace.
//
// Losses (non-saturating GAN, Goodfellow et al. 2014), with s(x) = log(1+e^x):
//   L_D = (1/b) sum_i s(-D(x_i)) + (1/b) sum_i s(D(G(z_i)))
//   L_G = (1/b) sum_i s(-D(G(z_i)))
//
// Thread-safety: DenseNet and GanNets are immutable and shared; each thread
// passes its own workspace.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/rng.h"

namespace fedsim {

class DenseNet {
 public:
  enum class Output { kLinear, kTanh };

  // sizes = {input, hidden..., output}. Hidden layers use LeakyReLU with
  // negative slope `leaky_slope` (0 is ReLU). REQUIRES: 0 <= leaky_slope < 1.
  DenseNet(std::vector<int> sizes, float leaky_slope, Output output);

  // Activation buffers for batches of up to max_batch rows.
  struct Workspace {
    int max_batch = 0;
    std::vector<Eigen::VectorXf> act;  // act[l]: output of layer l after its activation
    Eigen::VectorXf grad_a, grad_b;    // ping-pong buffers for dLoss/d(pre-activation)
  };
  Workspace NewWorkspace(int max_batch) const;

  int64_t num_params() const { return num_params_; }
  int input_dim() const { return sizes_.front(); }
  int output_dim() const { return sizes_.back(); }
  const std::vector<int>& sizes() const { return sizes_; }
  std::string Describe() const;
  // Multiply-adds of one forward pass on one sample.
  double ForwardMacs() const;

  // Uniform(+-1/sqrt(fan_in)) weights and biases (PyTorch's nn.Linear default).
  void Init(float* params, Rng& rng) const;

  // Forward pass on the b x input batch x (row-major if x_row_major, else
  // column-major); returns the b x output column-major result, which lives
  // in ws until the next Forward. REQUIRES: b <= ws.max_batch.
  const float* Forward(const float* params, const float* x, bool x_row_major, int b, Workspace& ws) const;

  // Backward pass after Forward(params, x, ..., b, ws): g_out is dLoss/d(output)
  // (b x output, column-major). Writes the parameter gradient to grad_params
  // (num_params floats, overwritten) unless it is null, and dLoss/dx
  // (b x input, column-major) to grad_x unless it is null.
  void Backward(const float* params, const float* x, bool x_row_major, int b, const float* g_out, float* grad_params,
                float* grad_x, Workspace& ws) const;

 private:
  std::vector<int> sizes_;
  std::vector<int64_t> w_offset_, b_offset_;
  int64_t num_params_ = 0;
  float slope_;
  Output output_;
};

// The two networks and their place in one flat vector [generator; discriminator].
struct GanNets {
  GanNets(const GanConfig& cfg, int data_dim);
  DenseNet generator;      // latent_dim -> hidden... -> data_dim, tanh
  DenseNet discriminator;  // data_dim -> hidden... -> 1 logit
  int latent_dim() const { return generator.input_dim(); }
  int data_dim() const { return generator.output_dim(); }
  int64_t num_params() const { return generator.num_params() + discriminator.num_params(); }
  // Offset of the discriminator in the flat vector.
  int64_t disc_offset() const { return generator.num_params(); }
};

// Per-thread buffers of the GAN losses for batches of up to max_batch.
struct GanWorkspace {
  GanWorkspace() = default;
  GanWorkspace(const GanNets& nets, int max_batch);
  int max_batch = 0;
  DenseNet::Workspace g, d;  // d holds 2 max_batch rows: real and fake together
  Eigen::VectorXf d_in;      // 2b x data_dim column-major: real rows, then fake rows
  Eigen::VectorXf dlogit;    // dLoss/dlogit, 2b
  Eigen::VectorXf dx;        // dL_G/d(generator output), b x data_dim column-major
};

// Generates b samples from the b x latent column-major z; returns the b x
// data_dim column-major output (in ws.g, valid until the next call).
const float* GeneratorForward(const GanNets& nets, const float* wg, const float* z, int b, GanWorkspace& ws);

// L_D on the b real rows (row-major, scaled to [-1, 1]) and the b fake rows
// (column-major) with discriminator parameters wd; its gradient is written to
// grad_wd. Returns L_D. REQUIRES: b <= ws.max_batch.
double DiscriminatorLossAndGradient(const GanNets& nets, const float* wd, const float* real, const float* fake, int b,
                                    float* grad_wd, GanWorkspace& ws);

// L_G of the samples of the last GeneratorForward(nets, wg, z, b, ws) under
// the discriminator wd; the gradient with respect to the generator
// parameters is written to grad_wg. Returns L_G.
double GeneratorLossAndGradient(const GanNets& nets, const float* wg, const float* wd, const float* z, int b,
                                float* grad_wg, GanWorkspace& ws);

// What a classifier (the judge) says about a set of generated samples,
// accumulated sample by sample; partial sums merge in a fixed order.
struct SampleQualitySums {
  explicit SampleQualitySums(int classes = 0);
  // Adds one sample's class probabilities p (num_classes values summing to 1).
  // It counts as confident if max_y p(y) > confidence.
  void Add(const double* p, double confidence);
  void Merge(const SampleQualitySums& o);

  std::vector<int64_t> histogram;  // samples per predicted (argmax) class
  int64_t confident = 0;           // samples with max_y p(y|x) > confidence
  Eigen::VectorXd prob_sum;        // sum_x p(.|x)
  double plogp_sum = 0.0;          // sum_x sum_y p(y|x) log p(y|x)
  int64_t count = 0;
};

struct SampleQuality {
  double confident_share = 0.0;    // confident / count
  double class_entropy = 0.0;      // entropy of the predicted-class histogram, nats
  double effective_classes = 0.0;  // exp(class_entropy)
  double inception_score = 0.0;    // exp(E_x KL(p(y|x) || p(y))), p(y) = mean_x p(y|x)
  int classes_covered = 0;         // classes predicted for at least class_share of the samples
};

// Entropy in nats of the distribution given by counts (0 log 0 = 0; 0 if empty).
double HistogramEntropy(const std::vector<int64_t>& counts);
// Classes whose count is at least share * total.
int ClassesCovered(const std::vector<int64_t>& counts, double share);
SampleQuality Summarize(const SampleQualitySums& s, double class_share);

}  // namespace fedsim
