// The fedsim executable: parses the command line, builds the Config, calls the
// library, prints for people, and maps outcomes to exit codes:
//   0 success, 1 run failure (I/O, internal error, secure aggregation that
//   stops the run), 2 bad input (command line, config, data files, checkpoint),
//   3 diverged (NaN/Inf), 4 stalled (an asynchronous run in which no client can
//   report again), 128 + signal when interrupted (130 SIGINT, 143 SIGTERM).
// This is the only place in fedsim that prints for people.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>

#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "core/parallel.h"
#include "data/partition.h"
#include "fl/algorithm.h"
#include "run/experiment.h"
#include "core/numerics.h"
#include "metrics/compare.h"
#include "model/gemm_bench.h"
#include "model/model_bench.h"
#include "privacy/rdp_accountant.h"
#include "secure/he_cost.h"

namespace {

using fedsim::Config;
using nlohmann::json;

constexpr int kExitRunError = 1;
constexpr int kExitInputError = 2;
constexpr int kExitDiverged = 3;
constexpr int kExitStalled = 4;

// Set by SIGINT/SIGTERM; the round loop stops after the current round. A
// second signal of the same kind kills the process (SA_RESETHAND).
std::atomic<int> g_stop{0};

void OnSignal(int sig) { g_stop.store(sig); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Builds the config from an optional file and --set overrides.
Config LoadConfig(const std::string& path, const std::vector<std::string>& sets) {
  json j = path.empty() ? json::object() : fedsim::ReadConfigJson(path);
  if (!j.is_object()) throw fedsim::InputError(path + ": expected a JSON object at the top level");
  for (const auto& s : sets) fedsim::ApplyOverride(j, s);
  const std::string source = path.empty() ? std::string("<built-in defaults>") : path;
  const std::string where = sets.empty() ? source : source + " (with --set)";
  Config cfg = fedsim::ParseConfig(j, where);
  // The checks that need the run's components (an algorithm's upload against
  // DP, secure sums and compression), named like the parser's.
  try {
    fedsim::CheckExperiment(cfg);
  } catch (const fedsim::InputError& e) {
    throw fedsim::InputError(where + ": " + e.what());
  }
  return cfg;
}

std::string Fmt(const json& v, const char* spec = "{:.4f}") {
  return v.is_number() ? fmt::format(fmt::runtime(spec), v.get<double>()) : std::string("-");
}

// `fedsim data stats` as a table for people.
std::string DataStatsTable(const json& s) {
  const json& d = s["data"];
  const json& p = s["partition"];
  const json& n = p["samples_per_client"];
  const json& l = p["labels_per_client"];
  auto num = [](const json& v) {
    return v.is_number_integer() ? std::to_string(v.get<int64_t>()) : fmt::format("{:.1f}", v.get<double>());
  };
  std::string out = fmt::format("data                  {}\n", d["description"].get<std::string>());
  out += fmt::format("clients               {}\n", p["num_clients"].get<int64_t>());
  out += fmt::format("samples per client    min {}  p10 {}  median {}  p90 {}  max {}  mean {:.1f}  Gini {:.3f}\n",
                     num(n["min"]), num(n["p10"]), num(n["median"]), num(n["p90"]), num(n["max"]),
                     n["mean"].get<double>(), n["gini"].get<double>());
  out += fmt::format("classes per client    min {}  median {}  max {}  (of {})\n", num(l["min"]), num(l["median"]),
                     num(l["max"]), d["num_classes"].get<int>());
  out += fmt::format("label skew            {:.4f}  (mean total-variation distance of a client's label distribution "
                     "from the global one)\n",
                     p["mean_label_tv"].get<double>());
  if (p.contains("test_samples_per_client")) {
    const json& t = p["test_samples_per_client"];
    out += fmt::format("test samples/client   min {}  median {}  max {}  total {}  ({})\n", num(t["min"]),
                       num(t["median"]), num(t["max"]), num(t["total"]),
                       t["from"] == "test_set" ? "the data's own per-client test rows"
                                               : "split off by data.client_test_fraction");
  } else {
    out += "test samples/client   none (only the central test set; see data.client_test_fraction)\n";
  }
  return out;
}

// True while a progress line on a terminal has no newline yet.
bool g_line_open = false;

// Progress on stderr: one rewritten line on a terminal, plain lines otherwise.
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(isatty(fileno(stderr))) {}
  void OnRound(const json& rec, int total) {
    if (quiet_) return;
    const int r = rec["round"].get<int>();
    const bool gan = rec.contains("classes_covered");  // fedgan's records
    if (gan && !rec["classes_covered"].is_null()) {
      last_gan_ = fmt::format("classes {}  IS {}", rec["classes_covered"].get<int>(), Fmt(rec["inception_score"], "{:.2f}"));
    }
    if (!gan && !rec["test_accuracy"].is_null()) last_acc_ = rec["test_accuracy"].get<double>();
    const double wall = rec["wall_seconds"].get<double>();
    const double rate = wall > 0 ? r / wall : 0.0;
    const double eta = rate > 0 ? (total - r) / rate : 0.0;
    const std::string line =
        gan ? fmt::format("round {}/{}  {}  loss G {} D {}  {:.2f} rounds/s  ETA {:.0f}s", r, total, last_gan_,
                          Fmt(rec["generator_loss"], "{:.3f}"), Fmt(rec["discriminator_loss"], "{:.3f}"), rate, eta)
            : fmt::format("round {}/{}  acc {}  loss {}  {:.2f} rounds/s  ETA {:.0f}s", r, total,
                          std::isnan(last_acc_) ? std::string("-") : fmt::format("{:.4f}", last_acc_),
                          Fmt(rec["train_loss"]), rate, eta);
    if (tty_) {
      std::fprintf(stderr, "\r%-78s", line.c_str());
      g_line_open = r != total;
      if (r == total) std::fprintf(stderr, "\n");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool quiet_, tty_;
  double last_acc_ = NAN;
  std::string last_gan_ = "classes -  IS -";
};

// The run's config: from the file and --set, or from the checkpoint. In a
// distributed run rank 0 builds it and sends the resolved config to the other
// ranks, so they need neither the file nor the output directory, and every
// rank runs exactly the same config; a failure ends every rank (AgreedError).
Config RunConfig(fedsim::Comm& comm, const std::string& config_path, const std::vector<std::string>& sets,
                 const std::string& resume_dir) {
  auto build = [&]() {
    if (resume_dir.empty()) return LoadConfig(config_path, sets);
    if (!config_path.empty() || !sets.empty()) {
      throw fedsim::InputError("--resume takes the run's output directory only; its config comes from the checkpoint");
    }
    return fedsim::ParseConfig(fedsim::CheckpointConfig(resume_dir), resume_dir + "/checkpoint.bin");
  };
  if (comm.size() == 1) return build();
  Config cfg;
  std::string text;
  int code = 0;
  std::string message;
  if (comm.root()) {
    try {
      cfg = build();
      text = fedsim::ToJson(cfg).dump();
    } catch (const fedsim::InputError& e) {
      code = kExitInputError;
      message = e.what();
    } catch (const std::exception& e) {
      code = kExitRunError;
      message = e.what();
    }
  }
  fedsim::Agree(comm, code, message);
  fedsim::BroadcastString(comm, text);
  if (!comm.root()) cfg = fedsim::ParseConfig(json::parse(text), "<config from rank 0>");
  return cfg;
}

int RunCommand(fedsim::Comm& comm, const std::string& config_path, const std::vector<std::string>& sets,
               std::string out, int threads, bool quiet, const std::string& resume_dir, const std::string& from) {
  if (!from.empty() && !resume_dir.empty()) {
    throw fedsim::InputError("--from: branch a run or resume it, not both");
  }
  const Config cfg = RunConfig(comm, config_path, sets, resume_dir);
  if (!resume_dir.empty()) out = resume_dir;
  if (out.empty()) out = "runs/" + cfg.experiment.name;
  // Only rank 0 prints; the other ranks are silent.
  quiet = quiet || !comm.root();
  Progress progress(quiet);
  fedsim::RunOptions opt;
  opt.threads = threads;
  opt.out_dir = out;
  opt.resume = !resume_dir.empty();
  opt.branch_from = from;
  opt.stop = &g_stop;
  opt.comm = &comm;
  opt.on_round = [&](const json& rec, int total) { progress.OnRound(rec, total); };
  InstallSignalHandlers();
  const json m = fedsim::RunExperiment(cfg, opt);
  const std::string status = m["summary"]["status"].get<std::string>();
  if (!comm.root()) {
    if (status == "interrupted") {
      return 128 + (m["summary"]["signal"].is_null() ? SIGINT : m["summary"]["signal"].get<int>());
    }
    return status == "diverged" ? kExitDiverged : status == "stalled" ? kExitStalled : 0;
  }
  if (status == "interrupted") {
    if (g_line_open) std::fprintf(stderr, "\n");
    const int sig = m["summary"]["signal"].is_null() ? SIGINT : m["summary"]["signal"].get<int>();
    std::fprintf(stderr, "fedsim: interrupted after %s %d of %d; checkpoint and metrics so far are in %s\n"
                         "fedsim: continue with: fedsim run --resume %s\n",
                 cfg.baseline.kind != "none" ? "epoch" : "round", m["summary"]["rounds_completed"].get<int>(),
                 m["summary"]["rounds"].get<int>(), out.c_str(), out.c_str());
    return 128 + sig;
  }
  if (status == "stalled") {
    if (g_line_open) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "fedsim: stalled after server step %d of %d: %s; metrics in %s\n",
                 m["summary"]["rounds_completed"].get<int>(), m["summary"]["rounds"].get<int>(),
                 m["summary"]["stall_reason"].get<std::string>().c_str(), out.c_str());
    return kExitStalled;
  }
  if (status == "diverged") {
    if (g_line_open) std::fprintf(stderr, "\n");
    const std::string ckpt = out + "/checkpoint.bin";
    std::fprintf(stderr, "fedsim: diverged: NaN or Inf in round %d (%lld client updates non-finite); metrics in %s\n",
                 m["summary"]["diverged_round"].get<int>(),
                 static_cast<long long>(m["summary"]["skipped_updates"].get<int64_t>()), out.c_str());
    if (std::filesystem::exists(ckpt)) {
      std::fprintf(stderr, "fedsim: the last good checkpoint is %s\n", ckpt.c_str());
    }
    return kExitDiverged;
  }
  if (!quiet) {
    const json& s = m["summary"];
    const bool baseline = cfg.baseline.kind != "none";
    const int rounds = s["rounds"].get<int>();
    const char* unit = baseline ? "epoch" : "round";
    if (baseline) {
      const std::string how = cfg.baseline.kind == "centralized"
                                  ? std::string("pooled data")
                                  : fmt::format("{} workers, {} all-reduce", cfg.baseline.workers, cfg.baseline.topology);
      std::printf("%s: %s baseline (%s), %s, %s, %d epochs of batch %d\n", cfg.experiment.name.c_str(),
                  cfg.baseline.kind.c_str(), how.c_str(), m["model"]["description"].get<std::string>().c_str(),
                  m["data"]["description"].get<std::string>().c_str(), rounds, cfg.baseline.batch_size);
    } else {
      const std::string per_round =
          cfg.algorithm.sampling == "poisson"
              ? fmt::format("each with probability {}", cfg.algorithm.sampling_rate)
              : fmt::format("{} per round", fedsim::CohortSize(cfg.algorithm, cfg.data.num_clients));
      std::printf("%s: %s, %s, %s, %d clients (%s), %d rounds\n", cfg.experiment.name.c_str(),
                  cfg.algorithm.name.c_str(), m["model"]["description"].get<std::string>().c_str(),
                  m["data"]["description"].get<std::string>().c_str(), cfg.data.num_clients, per_round.c_str(),
                  rounds);
    }
    if (cfg.algorithm.name == "fedgan") {
      std::printf("judge test accuracy %s; generated samples: %s of %d classes covered, effective classes %s, "
                  "inception score %s, confident %s; image %s/%s\n",
                  Fmt(s["judge_test_accuracy"]).c_str(), Fmt(s["final_classes_covered"], "{:.0f}").c_str(),
                  m["data"]["num_classes"].get<int>(), Fmt(s["final_effective_classes"], "{:.2f}").c_str(),
                  Fmt(s["final_inception_score"], "{:.2f}").c_str(), Fmt(s["final_confident_share"], "{:.3f}").c_str(),
                  out.c_str(), s["final_samples_image"].is_string() ? s["final_samples_image"].get<std::string>().c_str() : "-");
    } else {
      std::printf("final test accuracy %s (best %s at %s %d), %ss to target %s\n",
                  Fmt(s["final_test_accuracy"]).c_str(), Fmt(s["best_test_accuracy"]).c_str(), unit,
                  s["best_round"].get<int>(), unit,
                  s["rounds_to_target"].is_null() ? "-" : std::to_string(s["rounds_to_target"].get<int>()).c_str());
    }
    const std::string simulated =
        s.contains("sim_time_s") ? fmt::format("simulated {:.1f} s, ", s["sim_time_s"].get<double>()) : "";
    std::printf("bytes up %.1f MB, down %.1f MB, %swall %.2f s (%.3f s/%s), results in %s\n",
                s["bytes_up"].get<double>() / 1e6, s["bytes_down"].get<double>() / 1e6, simulated.c_str(),
                s["wall_seconds"].get<double>(), s["wall_seconds"].get<double>() / rounds, unit, out.c_str());
  }
  return 0;
}

// `fedsim run`, in one process or as one rank of an MPI run. Exit codes are
// the same on every rank. A failure all ranks agreed on (before the first
// round) is printed once, by rank 0; a failure one rank meets alone later is
// printed by that rank, which then aborts the whole run with its exit code.
int RunMain(const std::string& config_path, const std::vector<std::string>& sets, const std::string& out,
            int threads, bool quiet, const std::string& resume_dir, const std::string& from) {
  std::unique_ptr<fedsim::Comm> comm;
  auto report = [&](int code, const std::string& what, int rank) {
    const char* kind = code == kExitInputError ? "error" : "run failed";
    const std::string where = rank > 0 ? fmt::format("rank {}: ", rank) : std::string();
    std::fprintf(stderr, "%sfedsim: %s: %s%s\n", g_line_open ? "\n" : "", kind, where.c_str(), what.c_str());
  };
  try {
    comm = fedsim::OpenWorldComm();
    return RunCommand(*comm, config_path, sets, out, threads, quiet, resume_dir, from);
  } catch (const fedsim::AgreedError& e) {
    if (comm->root()) report(e.code(), e.what(), e.failed_rank());
    return e.code();
  } catch (const fedsim::InputError& e) {
    report(kExitInputError, e.what(), comm ? comm->rank() : 0);
    if (comm && comm->size() > 1) comm->Abort(kExitInputError);
    return kExitInputError;
  } catch (const std::exception& e) {
    report(kExitRunError, e.what(), comm ? comm->rank() : 0);
    if (comm && comm->size() > 1) comm->Abort(kExitRunError);
    return kExitRunError;
  }
}

void PrintList() {
  const auto& c = fedsim::GetCatalog();
  auto section = [](const char* title, const std::vector<fedsim::CatalogEntry>& entries) {
    std::printf("%s:\n", title);
    for (const auto& e : entries) std::printf("  %-14s %s\n", e.name.c_str(), e.summary.c_str());
  };
  section("datasets (data.dataset)", c.datasets);
  section("partitioners (data.partition.kind)", c.partitioners);
  section("models (model.kind)", c.models);
  section("algorithms (algorithm.name)", c.algorithms);
}

void PrintConfigKeys() {
  std::printf("| key | type | default | meaning |\n|---|---|---|---|\n");
  for (const auto& k : fedsim::ListConfigKeys()) {
    std::printf("| `%s` | %s | `%s` | %s |\n", k.path.c_str(), k.type.c_str(), k.default_value.dump().c_str(),
                k.doc.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  fedsim::InitNumerics();
  CLI::App app{"fedsim: a federated-learning simulator"};
  app.require_subcommand(1);
  app.set_version_flag("--version", FEDSIM_VERSION);

  std::string config_path, out;
  std::vector<std::string> sets;
  int threads = 0;
  bool quiet = false, print = false;

  auto* run = app.add_subcommand("run", "Run an experiment (no CONFIG: the built-in default on synthetic data)");
  run->add_option("config", config_path, "Experiment config (JSON)");
  run->add_option("--set", sets, "Override a key: key.path=value (value is JSON, or a bare string)")
      ->type_name("KEY=VALUE");
  run->add_option("--out", out, "Output directory (default runs/<experiment.name>)");
  run->add_option("--threads", threads, "Threads for client training (default: all cores)")->check(CLI::NonNegativeNumber);
  run->add_flag("--quiet", quiet, "No progress or summary output");
  std::string resume_dir;
  run->add_option("--resume", resume_dir, "Continue the run whose output directory is DIR from its checkpoint")
      ->type_name("DIR");
  std::string from;
  run->add_option("--from", from,
                  "Branch: start from another run's checkpoint (RUN/checkpoint.bin) with this config; the results "
                  "go to --out as a new run")
      ->type_name("CHECKPOINT");

  auto* validate = app.add_subcommand("validate", "Check a config without running it");
  validate->add_option("config", config_path, "Experiment config (JSON)")->required();
  validate->add_option("--set", sets, "Override a key: key.path=value")->type_name("KEY=VALUE");
  validate->add_flag("--print", print, "Print the resolved config (defaults filled in)");

  auto* bench = app.add_subcommand("bench-gemm", "Measure this machine's float32 GEMM rate with Eigen (GFLOP/s)");
  int gemm_size = 512;
  double gemm_seconds = 1.0;
  bench->add_option("--threads", threads, "Threads, each multiplying its own matrices (default: all cores)");
  bench->add_option("--size", gemm_size, "Matrix size n (n x n times n x n)")->check(CLI::Range(16, 8192));
  bench->add_option("--seconds", gemm_seconds, "Minimum timed duration")->check(CLI::Range(0.01, 600.0));
  bench->add_flag("--json", print, "Print a JSON object instead of text");

  auto* bench_model = app.add_subcommand(
      "bench-model", "Time local SGD epochs of a model on generated data of its input shape (samples/s, GFLOP/s)");
  fedsim::ModelBenchSpec mb;
  std::vector<int> mb_hidden;
  bench_model->add_option("--model", mb.model.kind, "model.kind: a preset, cnn_mcmahan, cnn_lenet, mlp or softmax")
      ->required();
  bench_model->add_option("--hidden", mb_hidden, "model.hidden for --model mlp, e.g. 200,200")->delimiter(',');
  bench_model->add_option("--batch", mb.batch, "Local batch size")->check(CLI::Range(1, 100000));
  bench_model->add_option("--samples", mb.samples, "Samples per client (one local epoch)")->check(CLI::Range(1, 10000000));
  bench_model->add_option("--threads", mb.threads, "Clients trained at once, one per thread")->check(CLI::Range(1, 1024));
  bench_model->add_option("--seconds", mb.min_seconds, "Minimum timed duration")->check(CLI::Range(0.0, 600.0));
  bench_model->add_option("--vocab", mb.vocab_size, "Vocabulary of token models (sent140_lstm: default 10001)")
      ->check(CLI::Range(1, 100000000));
  bench_model->add_flag("--json", print, "Print a JSON object instead of text");

  auto* privacy = app.add_subcommand("privacy", "RDP accountant for the sampled Gaussian mechanism");
  privacy->require_subcommand(1);
  double pq = 0, psigma = 0, pdelta = 1e-5, peps = 0;
  int64_t psteps = 0;
  std::string pconv = "improved";
  auto* peps_cmd = privacy->add_subcommand("epsilon", "Print epsilon for (q, sigma, steps, delta)");
  auto* psig_cmd = privacy->add_subcommand("sigma", "Print the smallest noise multiplier meeting (q, steps, delta, epsilon)");
  for (auto* c : {peps_cmd, psig_cmd}) {
    c->add_option("--q", pq, "Sampling rate")->required()->check(CLI::Range(0.0, 1.0));
    c->add_option("--steps", psteps, "Number of steps (rounds)")->required()->check(CLI::PositiveNumber);
    c->add_option("--delta", pdelta, "Target delta")->check(CLI::Range(0.0, 1.0));
    c->add_option("--conversion", pconv, "improved (default) or classic")->check(CLI::IsMember({"improved", "classic"}));
  }
  peps_cmd->add_option("--sigma", psigma, "Noise multiplier")->required()->check(CLI::NonNegativeNumber);
  psig_cmd->add_option("--epsilon", peps, "Target epsilon")->required()->check(CLI::PositiveNumber);

  auto* bench_he = app.add_subcommand("bench-he", "Time this machine's real Paillier (encrypt, add, decrypt per ciphertext)");
  int he_bits = 2048, he_samples = 8;
  bench_he->add_option("--key-bits", he_bits, "Paillier modulus bits")->check(CLI::Range(512, 8192));
  bench_he->add_option("--samples", he_samples, "Operations timed of each kind")->check(CLI::Range(1, 1000));

  auto* list = app.add_subcommand("list", "List datasets, partitioners, models and algorithms");
  bool config_keys = false;
  list->add_flag("--config-keys", config_keys, "List every config key with type, default and meaning (markdown)");

  auto* compare = app.add_subcommand("compare", "Compare finished runs side by side (run or sweep directories)");
  std::vector<std::string> compare_paths, group_by;
  bool compare_csv = false;
  double compare_target = 0;
  compare->add_option("results", compare_paths, "Run directories (metrics.json) or sweep directories (manifest.jsonl)")
      ->required()
      ->type_name("RESULT");
  compare->add_option("--group-by", group_by, "One row per value of this config key, e.g. algorithm.name (repeatable)")
      ->type_name("KEY")
      ->allow_extra_args(false);
  compare->add_flag("--csv", compare_csv, "CSV instead of a markdown table");
  auto* compare_target_opt =
      compare->add_option("--target", compare_target, "Rounds to this test accuracy, computed from the rounds")
          ->type_name("ACC")
          ->check(CLI::Range(0.0, 1.0));

  auto* data_cmd = app.add_subcommand("data", "Look at a config's federated data without running");
  data_cmd->require_subcommand(1);
  auto* stats_cmd = data_cmd->add_subcommand(
      "stats", "Clients, samples and classes per client, label skew and per-client test rows of CONFIG's data");
  bool stats_json = false;
  stats_cmd->add_option("config", config_path, "Experiment config (JSON)")->required();
  stats_cmd->add_option("--set", sets, "Override a key: key.path=value")->type_name("KEY=VALUE");
  stats_cmd->add_flag("--json", stats_json, "Print a JSON object instead of the table");
  auto* convert_cmd = data_cmd->add_subcommand(
      "convert", "Write CONFIG's loaded data to a binary cache, which runs then read with data.cache = FILE");
  std::string convert_out;
  convert_cmd->add_option("config", config_path, "Experiment config (JSON)")->required();
  convert_cmd->add_option("--set", sets, "Override a key: key.path=value")->type_name("KEY=VALUE");
  convert_cmd->add_option("--out", convert_out, "The cache file to write")->required()->type_name("FILE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitInputError;
  }

  if (*run) return RunMain(config_path, sets, out, threads, quiet, resume_dir, from);
  try {
    if (*validate) {
      const Config c = LoadConfig(config_path, sets);
      if (print) {
        std::printf("%s\n", fedsim::ToJson(c).dump(2).c_str());
      } else {
        std::printf("%s: OK\n", config_path.c_str());
      }
      return 0;
    }
    if (*bench) {
      const auto r = fedsim::MeasureGemm(gemm_size, fedsim::ResolveThreads(threads), gemm_seconds);
      if (print) {
        std::printf("%s\n", json({{"threads", r.threads}, {"size", r.size}, {"gflops", r.gflops},
                                  {"seconds", r.seconds}}).dump().c_str());
      } else {
        std::printf("float32 GEMM %dx%d, %d thread(s): %.1f GFLOP/s\n", r.size, r.size, r.threads, r.gflops);
      }
      return 0;
    }
    if (*bench_model) {
      const int vocab = mb.vocab_size;
      mb.model.hidden = mb_hidden;
      fedsim::SetBenchInput(mb);
      if (vocab > 0 && mb.vocab_size > 0) {
        mb.vocab_size = vocab;
        if (mb.next_token) mb.num_classes = vocab;  // next-token models predict the ids
      }
      const auto r = fedsim::MeasureModelTraining(mb);
      if (print) {
        std::printf("%s\n", json({{"model", r.kind},
                                  {"description", r.description},
                                  {"num_params", r.num_params},
                                  {"train_flops_per_sample", r.train_flops_per_sample},
                                  {"batch", mb.batch},
                                  {"threads", r.threads},
                                  {"epochs", r.epochs},
                                  {"samples", r.samples},
                                  {"seconds", r.seconds},
                                  {"samples_per_second", r.samples_per_second},
                                  {"gflops", r.gflops},
                                  {"final_loss", r.final_loss}})
                                .dump()
                                .c_str());
      } else {
        std::printf("%s, batch %d, %d thread(s): %.0f samples/s, %.2f GFLOP/s (%lld epochs of %d samples in %.2f s)\n",
                    r.description.c_str(), mb.batch, r.threads, r.samples_per_second, r.gflops,
                    static_cast<long long>(r.epochs), mb.samples, r.seconds);
      }
      return 0;
    }
    if (*bench_he) {
      const auto t = fedsim::CalibratePaillier(he_bits, he_samples, 1);
      std::printf("Paillier %d-bit, per packed ciphertext: encrypt %.3f ms, add %.2f us, decrypt %.3f ms\n",
                  t.modulus_bits, t.encrypt_seconds * 1e3, t.add_seconds * 1e6, t.decrypt_seconds * 1e3);
      return 0;
    }
    if (*privacy) {
      const auto conv = pconv == "classic" ? fedsim::Conversion::kClassic : fedsim::Conversion::kImproved;
      const auto orders = fedsim::DefaultOrders();
      if (*peps_cmd) {
        const auto r = fedsim::GetEpsilon(orders, fedsim::ComputeRdp(pq, psigma, psteps, orders), pdelta, conv);
        std::printf("epsilon %.6g at delta %g (order %g, %s conversion)\n", r.epsilon, pdelta, r.order, pconv.c_str());
      } else {
        const double s = fedsim::FindNoiseMultiplier(pq, psteps, pdelta, peps, conv, orders);
        const auto r = fedsim::GetEpsilon(orders, fedsim::ComputeRdp(pq, s, psteps, orders), pdelta, conv);
        std::printf("sigma %.6g gives epsilon %.6g at delta %g (%s conversion)\n", s, r.epsilon, pdelta, pconv.c_str());
      }
      return 0;
    }
    if (*compare) {
      const auto target = compare_target_opt->count() ? std::optional<double>(compare_target) : std::nullopt;
      std::fputs(fedsim::CompareTable(fedsim::LoadRuns(compare_paths), group_by, compare_csv, target).c_str(), stdout);
      return 0;
    }
    if (*convert_cmd) {
      const Config c = LoadConfig(config_path, sets);
      fedsim::DataConfig dc = c.data;
      dc.cache.clear();  // read the sources
      const uint64_t data_seed = c.data.seed >= 0 ? static_cast<uint64_t>(c.data.seed) : c.experiment.seed;
      const auto t0 = std::chrono::steady_clock::now();
      const fedsim::FederatedData fd = fedsim::LoadData(dc, data_seed);
      fedsim::WriteDataCache(convert_out, dc, data_seed, fd);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("wrote %s (%.1f s): %s\n", convert_out.c_str(), s, fd.description.c_str());
      return 0;
    }
    if (*data_cmd) {
      const Config c = LoadConfig(config_path, sets);
      const json stats = fedsim::DataStats(
          c.data, c.data.seed >= 0 ? static_cast<uint64_t>(c.data.seed) : c.experiment.seed, c.experiment.seed);
      std::fputs(stats_json ? (stats.dump(2) + "\n").c_str() : DataStatsTable(stats).c_str(), stdout);
      return 0;
    }
    if (*list) {
      if (config_keys) {
        PrintConfigKeys();
        return 0;
      }
      PrintList();
      return 0;
    }
  } catch (const fedsim::InputError& e) {
    std::fprintf(stderr, "%sfedsim: error: %s\n", g_line_open ? "\n" : "", e.what());
    return kExitInputError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%sfedsim: run failed: %s\n", g_line_open ? "\n" : "", e.what());
    return kExitRunError;
  }
  return 0;
}
