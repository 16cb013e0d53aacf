// The chain of upload transforms a configuration asks for, in order, and the
// combinations it refuses.
#include <fmt/format.h>

#include "core/error.h"
#include "round/attack.h"
#include "round/upload_transform.h"

namespace fedsim {
namespace {

// Compression changes the upload's values: only a linear upload (a model
// delta or a gradient) keeps its meaning, and only where nothing after it
// relies on the exact values.
void CheckCompression(const Config& cfg, UploadKind kind) {
  const std::string codec = cfg.compression.kind;
  if (kind != UploadKind::kModelDelta && kind != UploadKind::kGradient) {
    throw InputError(fmt::format(
        "compression.kind: {} compresses a model-delta upload; algorithm.name={} uploads {} (use an algorithm that "
        "uploads a delta or a gradient: fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, feddyn, fedpara, fedsgd, "
        "fednova, afl, or the personalised ditto, apfl, pfedme, perfedavg, fedper, fedrep, lgfedavg, fedbn)",
        codec, cfg.algorithm.name, UploadKindName(kind)));
  }
  if (cfg.secure_aggregation.enabled) {
    throw InputError(fmt::format("compression.kind: {} cannot be combined with secure_aggregation.enabled: secure "
                                 "aggregation sends its own fixed-point encoding of every coordinate",
                                 codec));
  }
  if (cfg.encryption.scheme != "none") {
    throw InputError(fmt::format("compression.kind: {} cannot be combined with encryption.scheme={}: the ciphertexts "
                                 "carry every coordinate",
                                 codec, cfg.encryption.scheme));
  }
  if (cfg.privacy.mode == "central") {
    // Central DP's noise is calibrated to the clipped norm: only codecs that
    // never increase it keep that bound, and error feedback adds old residue.
    if (codec != "topk" && codec != "randk") {
      throw InputError(fmt::format("compression.kind: {} can increase an update's norm past privacy.clip_norm, "
                                   "which privacy.mode=central calibrates its noise to (use topk or randk)",
                                   codec));
    }
    if (cfg.compression.error_feedback) {
      throw InputError("compression.error_feedback: adds earlier residue to a clipped update, so its norm can exceed "
                       "privacy.clip_norm, which privacy.mode=central calibrates its noise to");
    }
  }
}

// Clipping and DP noise bound one model delta per client, weighted 1: the
// upload must be that delta, and the server must not need per-client
// figures. A secure sum needs a linear upload of small values (it clips to
// ±range) and a server that needs only the sum.
void CheckPrivacyAndSecureSums(const Config& cfg, const std::string& algorithm, UploadKind kind, bool reads_reports) {
  const bool delta = kind == UploadKind::kModelDelta || kind == UploadKind::kGradient;
  const std::string& mode = cfg.privacy.mode;
  if ((mode == "central" || mode == "local") && (!delta || reads_reports)) {
    throw InputError(fmt::format("privacy.mode: {} DP clips one model-delta upload per client and weighs it 1; "
                                 "algorithm.name={} uploads {}{} (use fedavg, fedsgd, fedprox, feddyn, fedavgm, "
                                 "fedadagrad, fedadam, fedyogi or fedpara)",
                                 mode, algorithm, UploadKindName(kind),
                                 reads_reports ? " and its server step reads each client's report" : ""));
  }
  const bool secure = cfg.secure_aggregation.enabled || cfg.encryption.scheme == "paillier";
  if (secure && (!(delta || kind == UploadKind::kComposite) || reads_reports)) {
    const std::string key = cfg.secure_aggregation.enabled ? "secure_aggregation.enabled" : "encryption.scheme";
    throw InputError(fmt::format("{}: the server must only need the plain sum of small linear uploads; "
                                 "algorithm.name={} uploads {}{}",
                                 key, algorithm, UploadKindName(kind),
                                 reads_reports ? " and its server step reads each client's report" : ""));
  }
}

}  // namespace

void CheckUploadTransforms(const Config& cfg, const Algorithm& algo) {
  CheckPrivacyAndSecureSums(cfg, algo.name(), algo.upload_kind(), algo.server_reads_reports());
  CheckAttackAndRobust(cfg, algo.upload_kind(), algo.server_reads_reports());
  CheckUploadTransforms(cfg, algo.upload_kind());
}

void CheckUploadTransforms(const Config& cfg, UploadKind kind) {
  if (cfg.compression.kind != "none") {
    CheckCompression(cfg, kind);
  } else if (cfg.compression.error_feedback) {
    throw InputError("compression.error_feedback: needs a compressor (compression.kind)");
  }
}

std::vector<std::unique_ptr<UploadTransform>> BuildUploadTransforms(const Config& cfg, UploadKind kind,
                                                                    double noise_multiplier, int64_t upload_size,
                                                                    int num_clients, int threads, Comm* comm,
                                                                    const AttackPlan* attack) {
  std::vector<std::unique_ptr<UploadTransform>> chain;
  const PrivacyConfig& pc = cfg.privacy;
  if (pc.mode == "central" || pc.mode == "local") chain.push_back(MakeClipTransform(pc));
  if (pc.mode == "local") chain.push_back(MakeLocalNoiseTransform(pc, noise_multiplier, cfg.experiment.seed));
  CheckUploadTransforms(cfg, kind);
  // The attacker rewrites its upload after what an honest client does to it,
  // and before the encoding every upload must have.
  if (attack && attack->active()) chain.push_back(MakeAttackTransform(*attack, cfg.experiment.seed));
  if (cfg.compression.kind != "none") chain.push_back(MakeCompressTransform(cfg, upload_size, num_clients, threads, comm));
  return chain;
}

}  // namespace fedsim
