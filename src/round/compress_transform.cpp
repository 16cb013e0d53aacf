// Compression of model-delta uploads (docs/algorithms.md#compression): each
// client encodes its upload with the configured codec (src/compress/) into
// real bytes, which are what it sends (bytes_up), and the server works with
// the decoded vector. With error feedback (Seide et al. 2014; Stich et al.
// 2018; Karimireddy et al. 2019) client k keeps e_k, what compression dropped:
//   u = e_k + Delta,  c = Decode(Encode(u)),  e_k <- u - c,  upload c.
// Stochastic codecs draw from the stream (seed, kCompress, round, client).
#include <fmt/format.h>

#include "compress/compressor.h"
#include "core/error.h"
#include "fl/checkpoint.h"
#include "round/upload_transform.h"

namespace fedsim {
namespace {

class CompressTransform : public UploadTransform {
 public:
  CompressTransform(const Config& cfg, int64_t upload_size, int num_clients, int threads, Comm* comm)
      : seed_(cfg.experiment.seed), error_feedback_(cfg.compression.error_feedback), n_(upload_size) {
    CompressorSettings s;
    s.kind = cfg.compression.kind;
    s.density = cfg.compression.density;
    s.bits = cfg.compression.bits;
    s.bucket = cfg.compression.bucket;
    codec_ = CreateCompressor(s);
    scratch_.resize(static_cast<size_t>(threads));
    if (error_feedback_) {
      residual_.Resize(num_clients, 1);
      residual_.Configure(StatePrecision::kFloat32, comm);
    }
  }
  std::string name() const override { return "compress"; }

  void Apply(ClientUpload& u) const override {
    Eigen::Map<Eigen::VectorXf> v(u.values, u.size);
    // A non-finite update is dropped by the round; compression must not hide it.
    if (!v.allFinite()) return;
    Thread& t = scratch_[static_cast<size_t>(u.thread)];
    if (!error_feedback_) {
      Compress(u, t);
      return;
    }
    Eigen::Map<Eigen::VectorXf> e = residual_.Open(u.client, 0, u.size, t.state);
    v += e;  // u = e + Delta
    e = v;
    Compress(u, t);
    e -= v;  // e = u - c
    residual_.Commit(u.client, 0, e);
  }

  int64_t PlannedBytes(int64_t) const override { return codec_->PlannedBytes(n_); }

  nlohmann::json RoundMetrics(const std::vector<ClientReport>& reports) const override {
    int64_t sent = 0, raw = 0;
    for (const ClientReport& r : reports) {
      sent += r.bytes_up;
      raw += r.raw_bytes_up;
    }
    return {{"codec", codec_->Describe()},
            {"error_feedback", error_feedback_},
            {"bytes_up", sent},
            {"raw_bytes_up", raw},
            {"ratio", sent > 0 ? static_cast<double>(raw) / static_cast<double>(sent) : 0.0}};
  }

  ClientStateStore* client_state() override { return error_feedback_ ? &residual_ : nullptr; }
  void Save(CheckpointWriter& w) const override {
    if (error_feedback_) residual_.Save(w, "compress/residual");
  }
  // A branch that switches compression on starts from zero residuals.
  void Load(const CheckpointReader& r) override {
    if (error_feedback_ && r.Has("compress/residual/0/ids")) residual_.Load(r, "compress/residual");
  }

 private:
  struct Thread;
  // The upload becomes what the server decodes from the client's bytes.
  void Compress(ClientUpload& u, Thread& t) const {
    Rng rng = DeriveStream(seed_, Stream::kCompress, static_cast<uint64_t>(u.round), static_cast<uint64_t>(u.client));
    codec_->Encode(u.values, u.size, rng, t.bytes, t.codec);
    codec_->Decode(t.bytes, u.size, u.values);
    u.report->bytes_up = static_cast<int64_t>(t.bytes.size());
  }
  struct Thread {
    std::vector<uint8_t> bytes;
    CompressScratch codec;
    Eigen::VectorXf state;  // unused with float32 state; Open's buffer
  };
  uint64_t seed_;
  bool error_feedback_;
  int64_t n_;
  std::unique_ptr<Compressor> codec_;
  mutable std::vector<Thread> scratch_;       // one per thread: Apply(thread t) touches entry t only
  mutable ClientStateStore residual_;         // entry k touched only while client k is transformed
};

}  // namespace

std::unique_ptr<UploadTransform> MakeCompressTransform(const Config& cfg, int64_t upload_size, int num_clients,
                                                       int threads, Comm* comm) {
  return std::make_unique<CompressTransform>(cfg, upload_size, num_clients, threads, comm);
}

}  // namespace fedsim
