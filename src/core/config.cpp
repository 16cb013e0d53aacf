#include "core/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/error.h"
#include "core/json_text.h"

namespace fedsim {
namespace {

using nlohmann::json;

std::string Join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Nesting depth of v, without recursion (a hostile value can be deep).
int Depth(const json& v) {
  int deepest = 0;
  std::vector<std::pair<const json*, int>> stack{{&v, 0}};
  while (!stack.empty()) {
    auto [node, d] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, d);
    if (d > 8) break;  // deep enough to be summarised
    if (node->is_structured()) {
      for (const auto& child : *node) stack.push_back({&child, d + 1});
    }
  }
  return deepest;
}

// A short rendering of a JSON value for error messages.
std::string Show(const json& v) {
  if (v.is_structured() && Depth(v) > 4) return fmt::format("a deeply nested {}", v.is_object() ? "object" : "array");
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string FormatReal(double x) {
  if (x >= 1e9) return "infinity";
  return fmt::format("{}", x);
}

// Lists keys (path, type, default, doc).
class KeyLister {
 public:
  std::vector<ConfigKey> keys;
  std::string prefix;

  void Add(const std::string& name, const std::string& type, json def, const char* doc) {
    keys.push_back({Join(prefix, name), type, std::move(def), doc});
  }
  void Str(const char* n, std::string& r, const char* d) { Add(n, "string", r, d); }
  void Seed(const char* n, uint64_t& r, const char* d) { Add(n, "integer >= 0", r, d); }
  void Int(const char* n, int& r, int lo, int hi, const char* d) {
    Add(n, hi < 100000000 ? fmt::format("integer in [{}, {}]", lo, hi) : fmt::format("integer >= {}", lo), r, d);
  }
  void Real(const char* n, double& r, double lo, double hi, bool lo_open, const char* d) {
    Add(n, hi < 1e9 ? fmt::format("number in {}{}, {}]", lo_open ? "(" : "[", lo, hi)
                    : fmt::format("number {} {}", lo_open ? ">" : ">=", lo), r, d);
  }
  void OptReal(const char* n, std::optional<double>& r, double lo, double hi, const char* d) {
    Add(n, fmt::format("number in {}{}, {}] or null", lo > 0 ? "(" : "[", lo > 0 ? 0 : lo, FormatReal(hi)),
        r ? json(*r) : json(nullptr), d);
  }
  void Bool(const char* n, bool& r, const char* d) { Add(n, "boolean", r, d); }
  void Choice(const char* n, std::string& r, std::initializer_list<const char*> opts, const char* d) {
    std::string t = "one of";
    for (auto* o : opts) t += std::string(" ") + o;
    Add(n, t, r, d);
  }
  void IntList(const char* n, std::vector<int>& r, int lo, const char* d) {
    Add(n, fmt::format("array of integers >= {}", lo), r, d);
  }
  void RealList(const char* n, std::vector<double>& r, double lo, const char* d) {
    Add(n, fmt::format("array of numbers >= {}", lo), r, d);
  }
  void Json(const char* n, json& r, const char* d) { Add(n, "array of objects", r, d); }
  template <class S>
  void Section(const char* n, S& s) {
    std::string saved = prefix;
    prefix = Join(prefix, n);
    s.Visit(*this);
    prefix = saved;
  }
};

const std::vector<ConfigKey>& AllKeys() {
  static const std::vector<ConfigKey> keys = ListConfigKeys();
  return keys;
}

// The closest key path to `path` among all keys, if any is close enough.
std::string Suggest(const std::string& path, const std::vector<std::string>& siblings) {
  std::string best;
  int best_d = 1 << 30;
  auto leaf_of = [](const std::string& p) { return p.substr(p.rfind('.') == std::string::npos ? 0 : p.rfind('.') + 1); };
  const std::string leaf = leaf_of(path);
  for (const auto& s : siblings) {
    const int d = EditDistance(leaf_of(s), leaf);
    if (d < best_d) best_d = d, best = s;
  }
  if (best_d <= std::max<int>(2, static_cast<int>(leaf.size()) / 3)) return best;
  // A key placed in the wrong section: the closest leaf anywhere.
  best.clear();
  best_d = 1 << 30;
  for (const auto& k : AllKeys()) {
    const int d = EditDistance(leaf_of(k.path), leaf);
    if (d < best_d) {
      best_d = d;
      best = k.path;
    }
  }
  if (best_d <= std::max<int>(1, static_cast<int>(leaf.size()) / 4)) return best;
  return {};
}

// Reads JSON into the structs, checking types and ranges and rejecting keys
// that no field consumed.
class Reader {
 public:
  Reader(const json& root, std::string source) : source_(std::move(source)) { stack_.push_back(&root); }

  [[noreturn]] void Fail(const std::string& path, const std::string& what) const {
    throw InputError(fmt::format("{}: {}: {}", source_, path, what));
  }

  const json* Find(const char* name) {
    seen_.back().insert(name);
    const json& obj = *stack_.back();
    auto it = obj.find(name);
    return it == obj.end() ? nullptr : &*it;
  }
  std::string Path(const char* name) const { return Join(prefix_, name); }

  void Str(const char* n, std::string& r, const char*) {
    if (auto* v = Find(n)) {
      if (!v->is_string()) Fail(Path(n), "expected a string, got " + Show(*v));
      r = v->get<std::string>();
    }
  }
  void Seed(const char* n, uint64_t& r, const char*) {
    if (auto* v = Find(n)) {
      // A JSON file's 5 is unsigned; a json built in C++ from the int 5 is signed.
      if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) {
        r = v->get<uint64_t>();
      } else {
        Fail(Path(n), "expected an integer >= 0, got " + Show(*v));
      }
    }
  }
  void Int(const char* n, int& r, int lo, int hi, const char*) {
    if (auto* v = Find(n)) {
      if (!v->is_number_integer()) Fail(Path(n), fmt::format("expected an integer >= {}, got {}", lo, Show(*v)));
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
        Fail(Path(n), fmt::format("expected an integer <= {}, got {}", hi, Show(*v)));
      }
      const int64_t x = v->get<int64_t>();
      if (x < lo) Fail(Path(n), fmt::format("expected an integer >= {}, got {}", lo, Show(*v)));
      if (x > hi) Fail(Path(n), fmt::format("expected an integer <= {}, got {}", hi, Show(*v)));
      r = static_cast<int>(x);
    }
  }
  double CheckReal(const char* n, const json& v, double lo, double hi, bool lo_open) {
    const std::string range = fmt::format("a number {} {}{}", lo_open ? ">" : ">=", lo,
                                          hi < 1e9 ? fmt::format(" and <= {}", hi) : std::string());
    if (!v.is_number()) Fail(Path(n), "expected " + range + ", got " + Show(v));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || (lo_open && x == lo) || x > hi) {
      Fail(Path(n), "expected " + range + ", got " + Show(v));
    }
    return x;
  }
  void Real(const char* n, double& r, double lo, double hi, bool lo_open, const char*) {
    if (auto* v = Find(n)) r = CheckReal(n, *v, lo, hi, lo_open);
  }
  void OptReal(const char* n, std::optional<double>& r, double lo, double hi, const char*) {
    if (auto* v = Find(n)) {
      if (v->is_null()) {
        r.reset();
      } else {
        // A tiny positive lower bound stands for "> 0".
        r = lo > 0 && lo < 1e-6 ? CheckReal(n, *v, 0.0, hi, true) : CheckReal(n, *v, lo, hi, false);
      }
    }
  }
  void Bool(const char* n, bool& r, const char*) {
    if (auto* v = Find(n)) {
      if (!v->is_boolean()) Fail(Path(n), "expected true or false, got " + Show(*v));
      r = v->get<bool>();
    }
  }
  void Choice(const char* n, std::string& r, std::initializer_list<const char*> opts, const char*) {
    if (auto* v = Find(n)) {
      std::string list;
      for (auto* o : opts) list += (list.empty() ? "" : ", ") + std::string(o);
      if (!v->is_string()) Fail(Path(n), "expected one of " + list + ", got " + Show(*v));
      const std::string s = v->get<std::string>();
      std::string best;
      int best_d = 1 << 30;
      for (auto* o : opts) {
        if (s == o) {
          r = s;
          return;
        }
        int d = EditDistance(s, o);
        if (d < best_d) best_d = d, best = o;
      }
      std::string hint = best_d <= std::max<int>(2, static_cast<int>(s.size()) / 3)
                             ? fmt::format(" (did you mean '{}'?)", best) : "";
      Fail(Path(n), fmt::format("expected one of {}, got '{}'{}", list, s, hint));
    }
  }
  void IntList(const char* n, std::vector<int>& r, int lo, const char*) {
    if (auto* v = Find(n)) {
      const std::string what = fmt::format("expected an array of integers >= {}, got {}", lo, Show(*v));
      if (!v->is_array()) Fail(Path(n), what);
      std::vector<int> out;
      for (const auto& e : *v) {
        if (!e.is_number_integer() || e.get<int64_t>() < lo || e.get<int64_t>() > 100000000) Fail(Path(n), what);
        out.push_back(e.get<int>());
      }
      r = std::move(out);
    }
  }
  void RealList(const char* n, std::vector<double>& r, double lo, const char*) {
    if (auto* v = Find(n)) {
      const std::string what = fmt::format("expected an array of finite numbers >= {}, got {}", lo, Show(*v));
      if (!v->is_array()) Fail(Path(n), what);
      std::vector<double> out;
      for (const auto& e : *v) {
        if (!e.is_number() || !std::isfinite(e.get<double>()) || e.get<double>() < lo) Fail(Path(n), what);
        out.push_back(e.get<double>());
      }
      r = std::move(out);
    }
  }
  // A raw JSON array, kept as it is: its entries are checked by the code that
  // reads them (model.layers: CreateModel), which names the entry and field.
  void Json(const char* n, json& r, const char*) {
    if (auto* v = Find(n)) {
      if (!v->is_array()) Fail(Path(n), "expected an array of objects, got " + Show(*v));
      r = *v;
    }
  }
  template <class S>
  void Section(const char* n, S& s) {
    const json* v = Find(n);
    if (!v) return;
    if (!v->is_object()) Fail(Path(n), "expected an object, got " + Show(*v));
    Enter(n, *v);
    s.Visit(*this);
    Leave();
  }

  void Enter(const char* n, const json& obj) {
    prefix_stack_.push_back(prefix_);
    prefix_ = Join(prefix_, n);
    stack_.push_back(&obj);
    seen_.emplace_back();
  }
  void Leave() {
    CheckUnknown();
    stack_.pop_back();
    seen_.pop_back();
    prefix_ = prefix_stack_.back();
    prefix_stack_.pop_back();
  }
  void CheckUnknown() {
    const json& obj = *stack_.back();
    std::vector<std::string> siblings;
    for (const auto& k : seen_.back()) siblings.push_back(Join(prefix_, k));
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (seen_.back().count(it.key())) continue;
      const std::string path = Join(prefix_, it.key());
      const std::string s = Suggest(path, siblings);
      std::string msg = s.empty() ? "unknown key" : fmt::format("unknown key (did you mean '{}'?)", s);
      Fail(path, msg);
    }
  }
  void BeginRoot() { seen_.emplace_back(); }

 private:
  std::string source_;
  std::string prefix_;
  std::vector<std::string> prefix_stack_;
  std::vector<const json*> stack_;
  std::vector<std::set<std::string>> seen_;
};

class Writer {
 public:
  json out = json::object();
  std::vector<json*> stack{&out};

  void Put(const char* n, json v) { (*stack.back())[n] = std::move(v); }
  void Str(const char* n, std::string& r, const char*) { Put(n, r); }
  void Seed(const char* n, uint64_t& r, const char*) { Put(n, r); }
  void Int(const char* n, int& r, int, int, const char*) { Put(n, r); }
  void Real(const char* n, double& r, double, double, bool, const char*) { Put(n, r); }
  void OptReal(const char* n, std::optional<double>& r, double, double, const char*) {
    Put(n, r ? json(*r) : json(nullptr));
  }
  void Bool(const char* n, bool& r, const char*) { Put(n, r); }
  void Choice(const char* n, std::string& r, std::initializer_list<const char*>, const char*) { Put(n, r); }
  void IntList(const char* n, std::vector<int>& r, int, const char*) { Put(n, r); }
  void RealList(const char* n, std::vector<double>& r, double, const char*) { Put(n, r); }
  void Json(const char* n, json& r, const char*) { Put(n, r); }
  template <class S>
  void Section(const char* n, S& s) {
    json& child = (*stack.back())[n] = json::object();
    stack.push_back(&child);
    s.Visit(*this);
    stack.pop_back();
  }
};

// The line (1-based) of byte offset `off` in `text`: the line of the byte
// before it, where a parser error offset points just past the bad token.
int LineOf(const std::string& text, size_t off) {
  off = std::min(off, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(off > 0 ? off - 1 : 0), '\n'));
}

// Where nlohmann's parser stops on a document and the token it stopped at:
// the position of an error its exception does not carry (a number too large
// for a double, json.exception.out_of_range.406).
class ErrorPosition : public json::json_sax_t {
 public:
  size_t byte = 0;
  std::string token;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t position, const std::string& last_token, const json::exception&) override {
    byte = position;
    token = last_token.size() > 40 ? last_token.substr(0, 37) + "..." : last_token;  // 400 digits are no help
    return false;
  }
};

constexpr const char* kDoubleRange = "beyond the largest double, about 1.8e308";

// Which run kinds read which keys. A run kind is the config's baseline.kind
// when it is not "none" (centralized, data_parallel), else its
// algorithm.name (fedgan, or one of the federated algorithms). A key set to a
// value other than its default in a run that never reads it is an input
// error (RejectIgnoredKeys): a setting that silently does nothing makes a
// result look like something it is not. (A baseline checks the federated
// run's own settings as that run would: kSharedWithBaselines below.)
//
// `path` is a key or a section (every key under it); the longest matching
// path decides, and a key that no path matches is read by every run kind.
// `readers` lists run kinds, where "federated" is every algorithm except
// fedgan, "baselines" is centralized and data_parallel, and "-name" takes
// one kind out. `what` says what the key is for and who reads it, for the
// message. Keys read only under a setting of another key (data.partition.alpha
// with kind=dirichlet, privacy.clip_norm with mode=none) are not listed: the
// table is per run kind. Nor is algorithm.clients_per_round, which fedgia
// overrides (its cohort is every client) but ValidateConfig still checks
// against the population.
struct KeyUse {
  const char* path;
  const char* readers;
  const char* what;
};

const KeyUse kKeyUses[] = {
    {"experiment.rounds", "federated fedgan", "the number of rounds; a baseline runs baseline.epochs epochs"},
    {"experiment.on_divergence", "federated fedgan",
     "what a NaN in a client update does; a baseline has no client updates and stops at the first NaN"},
    {"experiment.target_accuracy", "federated baselines",
     "a classifier's test accuracy; fedgan reports sample quality"},
    {"model", "federated baselines", "the classifier; fedgan's generator and discriminator are set by gan.*"},
    {"algorithm", "federated fedgan", "a setting of federated rounds; a baseline trains with baseline.*"},
    {"algorithm.sampling_rate", "federated -fedgia fedgan", "Poisson sampling; fedgia uses every client every round"},
    {"algorithm.local_epochs", "federated -fedsgd -fedgia fedgan",
     "local minibatch training; fedsgd and fedgia take one full-batch gradient per client"},
    {"algorithm.local_steps", "federated -fedsgd -fedgia fedgan",
     "local minibatch training; fedsgd and fedgia take one full-batch gradient per client"},
    {"algorithm.batch_size", "federated -fedsgd -fedgia fedgan",
     "local minibatch training; fedsgd and fedgia take one full-batch gradient per client"},
    {"algorithm.lr", "federated -fedgia",
     "the client learning rate; fedgia's steps are set by sigma and r, fedgan's by gan.generator_lr and "
     "gan.discriminator_lr"},
    {"algorithm.lr_decay", "federated -fedgia fedgan",
     "the decay of the client learning rate, which fedgia does not take"},
    {"algorithm.momentum", "federated -fedsgd -fedgia", "client SGD momentum, for the local-SGD algorithms"},
    {"algorithm.weight_decay", "federated -fedsgd -fedgia", "client SGD weight decay, for the local-SGD algorithms"},
    {"algorithm.server_lr", "federated -feddyn -fedgia -qffl -pfedme",
     "the server learning rate; feddyn, fedgia and qffl compute the global model directly, pfedme steps by "
     "personalization.beta, fedgan averages it"},
    {"algorithm.mu", "fedprox", "FedProx's proximal weight, read by fedprox only"},
    {"algorithm.alpha", "feddyn", "FedDyn's regulariser, read by feddyn only"},
    {"algorithm.server_momentum", "fedavgm", "FedAvgM's server momentum, read by fedavgm only"},
    {"algorithm.beta1", "fedadagrad fedadam fedyogi", "the first-moment decay of fedadagrad, fedadam and fedyogi"},
    {"algorithm.beta2", "fedadam fedyogi", "the second-moment decay of fedadam and fedyogi"},
    {"algorithm.tau", "fedadagrad fedadam fedyogi", "the adaptivity of fedadagrad, fedadam and fedyogi"},
    {"algorithm.update_density", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.ternary", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.sparse_download", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.model_density", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.mask_every", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.prune_rounds", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.momentum_correction", "fedsparse", "a FedSparse setting, read by fedsparse only"},
    {"algorithm.fedpara_gamma", "fedpara", "FedPara's rank ratio, read by fedpara only"},
    {"algorithm.sigma", "fedgia", "a FedGiA setting, read by fedgia only"},
    {"algorithm.r", "fedgia", "a FedGiA setting, read by fedgia only"},
    {"algorithm.k0", "fedgia", "a FedGiA setting, read by fedgia only"},
    {"algorithm.rho", "fedgia", "a FedGiA setting, read by fedgia only"},
    {"algorithm.q", "qffl", "q-FFL's fairness exponent, read by qffl only"},
    {"algorithm.qffl_lipschitz", "qffl", "q-FFL's Lipschitz estimate, read by qffl only"},
    {"algorithm.afl_lambda_lr", "afl", "AFL's step size on the mixture weights, read by afl only"},
    {"algorithm.afl_domains", "afl", "AFL's domains, read by afl only"},
    {"algorithm.scaffold_variant", "scaffold", "SCAFFOLD's form, read by scaffold only"},
    {"algorithm.state_precision", "feddyn scaffold fedsparse fedgia ditto apfl pfedme fedper fedrep lgfedavg fedbn",
     "storage of per-client state, which only feddyn, scaffold, fedsparse, fedgia, ditto, apfl, pfedme, fedper, "
     "fedrep, lgfedavg and fedbn keep"},
    {"privacy", "federated", "differential privacy of federated rounds; fedgan and the baselines have none"},
    {"secure_aggregation", "fedavg fedsgd fedprox feddyn scaffold fedavgm fedadagrad fedadam fedyogi fedpara qffl",
     "secure aggregation, for the algorithms whose server needs only the sum of the uploads (fedavg, fedsgd, "
     "fedprox, feddyn, scaffold, fedavgm, fedadagrad, fedadam, fedyogi, fedpara, qffl)"},
    {"encryption", "federated", "encryption of the uploads of federated rounds; fedgan and the baselines have none"},
    {"system", "federated fedgan baselines", "the simulated devices and network"},
    {"system.availability", "federated fedgan", "a client fault of federated rounds; the baselines have none"},
    {"system.dropout", "federated fedgan", "a client fault of federated rounds; the baselines have none"},
    {"system.deadline_s", "federated fedgan", "the deadline of federated rounds; the baselines have none"},
    {"system.partial_work", "federated fedgan", "the deadline of federated rounds; the baselines have none"},
    {"system.over_selection", "federated fedgan", "cohort over-selection of federated rounds; the baselines have none"},
    {"system.availability_model", "federated", "availability over simulated time, for federated runs"},
    {"system.diurnal", "federated", "availability over simulated time, for federated runs"},
    {"system.trace", "federated", "availability over simulated time, for federated runs"},
    {"algorithm.mode", "fedavg fedsgd fedprox fedavgm fedadagrad fedadam fedyogi fedpara",
     "the event-driven modes, for the algorithms whose server step takes the mean of stateless updates (fedavg, "
     "fedsgd, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, fedpara)"},
    {"async.retry_s", "federated",
     "how long a slot (event-driven modes) or a synchronous round with nobody online waits for clients to come back"},
    {"async", "fedavg fedsgd fedprox fedavgm fedadagrad fedadam fedyogi fedpara",
     "the event-driven modes (algorithm.mode = fedbuff | fedasync), for the algorithms whose server step takes "
     "the mean of stateless updates"},
    {"audit", "federated", "privacy audits of a classifier's federated run; fedgan and the baselines have none"},
    {"audit.imprint", "fedavg fedsgd fedprox",
     "the imprint attack, which reads each upload as the model's update or gradient (fedavg, fedprox, fedsgd)"},
    {"baseline", "baselines", "a baseline's training, read only with baseline.kind=centralized or data_parallel"},
    {"baseline.workers", "data_parallel", "data-parallel training, read only with baseline.kind=data_parallel"},
    {"baseline.topology", "data_parallel", "data-parallel training, read only with baseline.kind=data_parallel"},
    {"baseline.server_mbps", "data_parallel", "data-parallel training, read only with baseline.kind=data_parallel"},
    {"metrics.eval_train", "federated baselines", "a classifier's training loss; fedgan reports sample quality"},
    {"gan", "fedgan", "FedGAN's networks and evaluation, read only with algorithm.name=fedgan"},
    {"compression", "federated", "compression of federated uploads; fedgan and the baselines have none"},
    {"attack", "federated", "poisoning attacks on federated rounds; fedgan and the baselines have none"},
    {"robust", "federated", "the server's aggregation rule of federated rounds; fedgan and the baselines have none"},
    {"data.augment", "federated -fedsgd -fedgia",
     "augmentation of local minibatches; fedsgd and fedgia take full-batch gradients, fedgan and the baselines "
     "train without it"},
    {"metrics.client_eval", "federated", "per-client evaluation of a classifier; fedgan and the baselines have none"},
    {"metrics.client_eval_fraction", "federated",
     "per-client evaluation of a classifier; fedgan and the baselines have none"},
    {"personalization", "federated", "personalisation of a classifier's clients; fedgan and the baselines have none"},
    {"personalization.lambda", "ditto pfedme", "the proximal weight of ditto and pfedme"},
    {"personalization.alpha", "apfl", "APFL's mixing weight, read by apfl only"},
    {"personalization.alpha_lr", "apfl", "APFL's adaptive mixing weight, read by apfl only"},
    {"personalization.beta", "pfedme", "pFedMe's server step, read by pfedme only"},
    {"personalization.inner_steps", "pfedme", "pFedMe's inner solver, read by pfedme only"},
    {"personalization.inner_lr", "pfedme", "pFedMe's inner solver, read by pfedme only"},
    {"personalization.perfedavg", "perfedavg", "a Per-FedAvg setting, read by perfedavg only"},
    {"personalization.adapt_lr", "perfedavg", "a Per-FedAvg setting, read by perfedavg only"},
    {"personalization.hf_delta", "perfedavg", "a Per-FedAvg setting, read by perfedavg only"},
    {"personalization.personal_layers", "fedper fedrep lgfedavg",
     "the layers kept on the client by fedper, fedrep and lgfedavg"},
    {"personalization.head_epochs", "fedrep", "FedRep's head-only epochs, read by fedrep only"},
    {"data.holdout_clients", "federated", "clients kept out of federated training; fedgan and the baselines have none"},
    {"data.client_test_fraction", "federated",
     "per-client test rows split off the clients' training rows, for federated runs; fedgan and the baselines "
     "train on every training row"},
};

}  // namespace

int HoldoutCount(double holdout_clients, int num_clients) {
  if (holdout_clients <= 0.0) return 0;
  if (holdout_clients < 1.0) return static_cast<int>(std::lround(holdout_clients * num_clients));
  return static_cast<int>(std::min<double>(holdout_clients, 2e9));
}

namespace {

// The choices of a Choice key, from its listed type ("one of a b c").
std::vector<std::string> ChoicesOf(const std::string& path) {
  for (const auto& k : AllKeys()) {
    if (k.path != path) continue;
    std::istringstream words(k.type.substr(std::string("one of").size()));
    std::vector<std::string> out;
    for (std::string w; words >> w;) out.push_back(w);
    return out;
  }
  throw std::logic_error("no config key " + path);
}

// kKeyUses with the reader lists expanded, checked once against the keys and
// the run kinds (a wrong entry is a programming error).
class KeyUses {
 public:
  struct Use {
    std::set<std::string> readers;
    std::string what;
  };

  static const KeyUses& Get() {
    static const KeyUses uses;
    return uses;
  }

  // The entry that decides for `key`, or nullptr if every run kind reads it.
  const Use* Find(const std::string& key) const {
    for (std::string p = key;;) {
      auto it = uses_.find(p);
      if (it != uses_.end()) return &it->second;
      const auto dot = p.rfind('.');
      if (dot == std::string::npos) return nullptr;
      p.resize(dot);
    }
  }

 private:
  KeyUses() {
    std::set<std::string> federated, baselines, kinds;
    for (const auto& a : ChoicesOf("algorithm.name")) (a == "fedgan" ? kinds : federated).insert(a);
    for (const auto& b : ChoicesOf("baseline.kind")) {
      if (b != "none") baselines.insert(b);
    }
    kinds.insert(federated.begin(), federated.end());
    kinds.insert(baselines.begin(), baselines.end());
    for (const KeyUse& u : kKeyUses) {
      const std::string path = u.path;
      const bool known = std::any_of(AllKeys().begin(), AllKeys().end(), [&](const ConfigKey& k) {
        return k.path == path || k.path.rfind(path + ".", 0) == 0;
      });
      if (!known || uses_.count(path)) throw std::logic_error("config key table: bad or repeated path " + path);
      Use& use = uses_[path];
      use.what = u.what;
      std::istringstream words(u.readers);
      for (std::string w; words >> w;) {
        const bool remove = w[0] == '-';
        if (remove) w.erase(0, 1);
        const std::set<std::string> one{w};
        const std::set<std::string>& names = w == "federated" ? federated : w == "baselines" ? baselines : one;
        if (!kinds.count(*names.begin())) throw std::logic_error("config key table: unknown run kind " + w);
        for (const auto& n : names) remove ? (void)use.readers.erase(n) : (void)use.readers.insert(n);
      }
    }
  }

  std::map<std::string, Use> uses_;
};

// The federated run's own settings, which a baseline accepts without reading
// them: one config runs as the federated experiment and, with baseline.kind
// set, as the centralized or data-parallel baseline it is compared with
// (README, scripts/fl_vs_distributed.sh). A baseline checks these keys as the
// federated run of its algorithm.name would, so the shared config stays a
// valid federated config. Paths as in kKeyUses.
const char* const kSharedWithBaselines[] = {"algorithm", "experiment.rounds", "experiment.on_divergence"};

// The run kind whose reading of `key` decides whether a config may set it.
std::string RunKindFor(const Config& c, const std::string& key) {
  if (c.baseline.kind == "none") return c.algorithm.name;
  for (const char* p : kSharedWithBaselines) {
    if (key == p || key.rfind(std::string(p) + ".", 0) == 0) return c.algorithm.name;
  }
  return c.baseline.kind;
}

// Rejects the first key (in declaration order) whose value differs from its
// default in a run that does not read it.
void RejectIgnoredKeys(const Config& c, const std::string& source) {
  const json resolved = ToJson(c);
  for (const ConfigKey& k : AllKeys()) {
    std::string pointer = "/" + k.path;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    const json& value = resolved.at(json::json_pointer(pointer));
    if (value == k.default_value) continue;
    const std::string kind = RunKindFor(c, k.path);
    const KeyUses::Use* use = KeyUses::Get().Find(k.path);
    if (!use || use->readers.count(kind)) continue;
    const std::string run = kind == c.algorithm.name ? "algorithm.name=" + kind : "baseline.kind=" + kind;
    throw InputError(fmt::format("{}: {}: not read by {} ({}); remove it, or set it to its default {}", source, k.path,
                                 run, use->what, k.default_value.dump()));
  }
}

}  // namespace

int EditDistance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<ConfigKey> ListConfigKeys() {
  Config c;
  KeyLister l;
  c.Visit(l);
  return l.keys;
}

Config ParseConfig(const json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object at the top level, got {}", source, Show(j)));
  Config c;
  Reader r(j, source);
  r.BeginRoot();
  c.Visit(r);
  r.CheckUnknown();
  ValidateConfig(c, source);
  // Only for configs read from JSON (files, --set, checkpoints): a program
  // that builds a Config in code may leave fields it does not use set.
  RejectIgnoredKeys(c, source);
  return c;
}

nlohmann::json ReadConfigJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open config file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw InputError(fmt::format("{}: config file is empty", path));
  // A config is a few levels deep; refuse absurd nesting before the
  // (recursive) JSON machinery can exhaust the stack on it.
  constexpr int kMaxDepth = 64;
  if (const int line = LineNestedDeeperThan(text, kMaxDepth)) {
    throw InputError(fmt::format("{}:{}: not a fedsim config: nested deeper than {} levels", path, line, kMaxDepth));
  }
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    throw InputError(fmt::format("{}:{}: not valid JSON: {}", path, LineOf(text, e.byte),
                                 pos == std::string::npos ? what : what.substr(pos)));
  } catch (const json::out_of_range&) {
    // A number too large for a double (1e400): the exception has no position.
    ErrorPosition at;
    json::sax_parse(text, &at);
    throw InputError(
        fmt::format("{}:{}: number {} is out of range ({})", path, LineOf(text, at.byte), at.token, kDoubleRange));
  }
}

void ApplyOverride(json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError(fmt::format("--set {}: expected key.path=value", assignment));
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;  // bare words are strings
    try {
      (void)value.dump();  // what the resolved config and the messages will do with it
    } catch (const json::type_error&) {
      throw InputError(fmt::format("--set {}: the value is neither JSON nor valid UTF-8 text", path));
    }
  } catch (const json::out_of_range&) {
    // A number too large for a double (1e400), not a bare word.
    ErrorPosition at;
    json::sax_parse(text, &at);
    throw InputError(fmt::format("--set {}: number {} is out of range ({})", assignment, at.token, kDoubleRange));
  }
  json* node = &j;
  size_t start = 0;
  for (;;) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw InputError(fmt::format("--set {}: empty component in key path", assignment));
    if (!node->is_object()) {
      throw InputError(fmt::format("--set {}: '{}' is not an object", assignment, path.substr(0, start - 1)));
    }
    if (dot == std::string::npos) {
      (*node)[part] = std::move(value);  // no recursive copy of a (possibly hostile) deep value
      return;
    }
    node = &(*node)[part];
    if (node->is_null()) *node = json::object();
    start = dot + 1;
  }
}

namespace {

// algorithm.mode = fedbuff | fedasync and availability over time.
template <class Fail>
void ValidateAsync(const Config& c, const Fail& fail) {
  const SystemConfig& sys = c.system;
  const std::string& mode = c.algorithm.mode;
  if (sys.availability_model == "trace" && sys.trace.empty()) {
    fail("system.trace: system.availability_model=trace needs a trace file (CSV: client,online_from,online_until)");
  }
  if (sys.availability_model != "trace" && !sys.trace.empty()) {
    fail("system.trace: a trace is only read with system.availability_model=trace");
  }
  if (mode == "sync") return;
  const std::string& a = c.algorithm.name;
  const bool buffered_ok = a == "fedavg" || a == "fedsgd" || a == "fedprox" || a == "fedavgm" || a == "fedadagrad" ||
                           a == "fedadam" || a == "fedyogi" || a == "fedpara";
  if (!buffered_ok) {
    fail("algorithm.mode: " + mode + " needs an algorithm whose clients keep no state and whose server step takes "
         "the mean of the updates (fedavg, fedsgd, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, fedpara); " + a +
         (a == "scaffold" || a == "feddyn" || a == "fedgia" || a == "fedsparse"
              ? " keeps client or server state whose update assumes a synchronous cohort"
              : a == "fedgan" ? " trains two networks with its own round"
                              : " needs the whole cohort of a round (normalisation, fairness weights or "
                                "personal models)"));
  }
  if (mode == "fedasync") {
    if (a != "fedavg" && a != "fedprox" && a != "fedpara") {
      fail("algorithm.mode: fedasync mixes the client's model into the global one (w <- (1 - alpha_s) w + alpha_s "
           "w_client); it takes a local-SGD algorithm with a plain server step (fedavg, fedprox, fedpara), not " + a);
    }
    if (c.algorithm.server_lr != 1.0) {
      fail("algorithm.server_lr: fedasync's step is async.alpha times the staleness weight; server_lr must be 1");
    }
    if (c.privacy.mode == "central" || c.secure_aggregation.enabled || c.encryption.scheme != "none") {
      fail(std::string(c.privacy.mode == "central" ? "privacy.mode" : c.secure_aggregation.enabled
                                                                           ? "secure_aggregation.enabled"
                                                                           : "encryption.scheme") +
           ": fedasync applies one client's model at a time, so there is no aggregate to noise or to sum securely; "
           "use algorithm.mode=fedbuff (a buffer of async.buffer_size updates)");
    }
  }
  if (c.attack.kind != "none") {
    fail("attack.kind: attacks are implemented for synchronous rounds (algorithm.mode=sync)");
  }
  if (c.system.deadline_s > 0.0 || c.system.partial_work || c.system.over_selection > 0.0) {
    fail(std::string(c.system.deadline_s > 0.0 ? "system.deadline_s"
                     : c.system.partial_work   ? "system.partial_work"
                                               : "system.over_selection") +
         ": deadlines, partial work and over-selection belong to synchronous rounds; in " + mode +
         " mode no client is waited for (use async.max_staleness to drop old updates)");
  }
  if (c.algorithm.sampling == "poisson") {
    fail("algorithm.sampling: " + mode + " dispatches a client whenever a slot frees (async.concurrency); Poisson "
         "cohort sampling does not apply");
  }
  const int holdout = HoldoutCount(c.data.holdout_clients, c.data.num_clients);
  const int trainers = c.data.num_clients - holdout;
  if (c.async.concurrency > trainers) {
    fail(fmt::format("async.concurrency: {} clients at once is more than the {} clients that train", c.async.concurrency,
                     trainers));
  }
}

}  // namespace

void ValidateConfig(const Config& c, const std::string& source) {
  auto fail = [&](const std::string& m) { throw InputError(source.empty() ? m : source + ": " + m); };
  if (c.model.kind == "mlp" && c.model.hidden.empty()) {
    fail("model.hidden: model.kind=mlp needs at least one hidden layer width, e.g. [200, 200]");
  }
  if (!c.model.input_shape.empty() && c.model.input_shape.size() != 3) {
    fail("model.input_shape: expected [C, H, W]");
  }
  if (c.model.kind.rfind("cnn", 0) == 0 && !c.model.hidden.empty()) {
    fail("model.hidden: the CNNs have fixed layers; remove model.hidden");
  }
  if (c.model.kind == "softmax" && !c.model.hidden.empty()) {
    fail("model.hidden: model.kind=softmax has no hidden layers; remove model.hidden or set model.kind=mlp");
  }
  if (c.model.kind == "sequential" && c.model.layers.empty()) {
    fail("model.layers: model.kind=sequential needs a list of layers (docs/models.md)");
  }
  if (c.model.kind != "sequential" && !c.model.layers.empty()) {
    fail("model.layers: only read with model.kind=sequential; model.kind=" + c.model.kind + " has fixed layers");
  }
  if (c.model.kind != "softmax" && c.model.kind != "mlp" && !c.model.hidden.empty()) {
    fail("model.hidden: only read with model.kind=mlp; model.kind=" + c.model.kind + " has its own layers");
  }
  const bool own_users =
      c.data.dataset == "synthetic" || c.data.dataset == "leaf" || c.data.dataset == "tff_h5" ||
      (c.data.dataset == "csv" && c.data.csv.client_column >= 0);
  if (c.data.partition.kind == "natural" && !own_users) {
    fail("data.partition.kind: 'natural' needs a dataset with its own users (data.dataset=synthetic, leaf or tff_h5, "
         "or csv with data.csv.client_column), got data.dataset=" +
         c.data.dataset);
  }
  if (c.data.client_test_fraction >= 1.0) {
    fail("data.client_test_fraction: must be below 1 (every client keeps a training row)");
  }
  if (c.data.dataset == "csv" && c.data.csv.client_column >= 0 && c.data.csv.client_column == c.data.csv.label_column) {
    fail("data.csv.client_column: the same column as data.csv.label_column");
  }
  if (c.data.partition.kind == "natural" && c.data.dataset == "synthetic" &&
      c.data.num_clients != c.data.synthetic.num_users) {
    fail(fmt::format("data.num_clients: the natural partition has one client per generated user "
                     "(data.synthetic.num_users = {}), got {}",
                     c.data.synthetic.num_users, c.data.num_clients));
  }
  if (c.data.holdout_clients >= 1.0 && c.data.holdout_clients != std::floor(c.data.holdout_clients)) {
    fail(fmt::format("data.holdout_clients: {} is neither a fraction below 1 nor a whole count of clients",
                     c.data.holdout_clients));
  }
  const int holdout = HoldoutCount(c.data.holdout_clients, c.data.num_clients);
  if (holdout >= c.data.num_clients) {
    fail(fmt::format("data.holdout_clients: holds out {} of the {} clients (data.num_clients); at least one must "
                     "train",
                     holdout, c.data.num_clients));
  }
  if (holdout > 0 && !c.algorithm.client_fraction && c.algorithm.name != "fedgia" &&
      c.algorithm.clients_per_round > c.data.num_clients - holdout) {
    fail(fmt::format("algorithm.clients_per_round: cohort of {} is larger than the {} clients left to train after "
                     "data.holdout_clients holds out {}",
                     c.algorithm.clients_per_round, c.data.num_clients - holdout, holdout));
  }
  if (holdout > 0 && c.algorithm.name == "afl") {
    fail("data.holdout_clients: afl's domains are the training clients and its mixture weights cover the whole "
         "population; held-out clients are not supported with afl");
  }
  if (c.personalization.finetune_steps > 0 && c.metrics.client_eval == "none") {
    fail("personalization.finetune_steps: fine-tuning happens before per-client evaluation; set "
         "metrics.client_eval (participants, all or sample)");
  }
  if (!c.algorithm.client_fraction && c.algorithm.clients_per_round > c.data.num_clients) {
    fail(fmt::format("algorithm.clients_per_round: cohort of {} is larger than the population (data.num_clients = {})",
                     c.algorithm.clients_per_round, c.data.num_clients));
  }
  if (c.data.partition.kind == "natural" && c.data.max_train_samples > 0) {
    fail("data.max_train_samples: cannot be combined with data.partition.kind=natural (it would drop whole users); "
         "use data.synthetic.num_users to make the data smaller");
  }
  if ((c.algorithm.name == "fedsgd" || c.algorithm.name == "fedgia") &&
      (c.algorithm.momentum != 0.0 || c.algorithm.weight_decay != 0.0)) {
    fail("algorithm.momentum: " + c.algorithm.name +
         " takes full-batch gradients, not local SGD; momentum and weight_decay must be 0");
  }
  {
    const std::string& a = c.algorithm.name;
    if (a == "apfl" || a == "pfedme" || a == "perfedavg") {
      // Their local updates are the papers' plain gradient steps, written out
      // in their LocalUpdate rather than run by TrainLocalSgd.
      if (c.algorithm.momentum != 0.0 || c.algorithm.weight_decay != 0.0) {
        fail("algorithm.momentum: " + a + "'s local updates are plain gradient steps; set momentum and " +
             "weight_decay to 0");
      }
      if (c.privacy.mode == "sample") fail("privacy.mode: sample-level DP-SGD is not implemented for " + a);
    }
  }
  if (c.algorithm.name == "scaffold" && c.algorithm.scaffold_variant == "paper" && c.algorithm.momentum != 0.0) {
    fail("algorithm.momentum: scaffold's option II control-variate update assumes plain local SGD; set momentum "
         "to 0, or set algorithm.scaffold_variant=niid_bench (NIID-Bench's form, which takes momentum)");
  }
  if (c.algorithm.name == "fedgan") {
    if (c.privacy.mode != "none") {
      fail("privacy.mode: fedgan has no differential privacy; set privacy.mode=none");
    }
    if (c.secure_aggregation.enabled || c.encryption.scheme != "none") {
      fail(std::string(c.secure_aggregation.enabled ? "secure_aggregation.enabled" : "encryption.scheme") +
           ": fedgan averages plain generator and discriminator parameters; secure aggregation and encryption are "
           "not supported");
    }
    if (c.algorithm.batch_size == 0) {
      fail("algorithm.batch_size: fedgan trains on minibatches; set batch_size >= 1");
    }
    if (c.algorithm.momentum != 0.0 || c.algorithm.weight_decay != 0.0) {
      fail("algorithm.momentum: fedgan's optimizer is gan.optimizer; algorithm.momentum and weight_decay must be 0");
    }
    if (c.data.standardize) {
      fail("data.standardize: fedgan generates features in [0, 1] (pixels); standardised data is not in that range");
    }
    if (c.gan.judge_kind == "mlp" && c.gan.judge_hidden.empty()) {
      fail("gan.judge_hidden: gan.judge_kind=mlp needs at least one hidden width, e.g. [200]");
    }
  }
  // Which algorithms' uploads DP clipping and secure sums accept follows from
  // what each algorithm declares about its upload (CheckUploadTransforms,
  // src/round/upload_transforms.cpp, run by `fedsim validate` and every run).
  if (c.privacy.mode == "sample" && (c.algorithm.name == "fedsgd" || c.algorithm.name == "fedgia")) {
    fail("privacy.mode: sample-level DP-SGD needs local SGD; " + c.algorithm.name + " takes full-batch gradients");
  }
  if ((c.data.augment.crop_padding > 0 || c.data.augment.flip) && c.data.standardize) {
    // Standardisation rescales each pixel position on its own: a shifted or
    // flipped row would carry one position's scale into another, and zero
    // padding would be each position's mean, not black. torchvision crops and
    // flips the raw image and normalises afterwards.
    fail("data.augment: crops and flips work on the image, but data.standardize=true z-scores each pixel position "
         "separately; set data.standardize=false (inputs in [0, 1], as NIID-Bench trains)");
  }
  if (c.privacy.mode == "sample" && c.algorithm.name == "fedrep") {
    fail("privacy.mode: fedrep trains its personal head on the client's data without DP-SGD, and the head it keeps "
         "shapes every body gradient the client uploads in later rounds, so DP-SGD on the body alone bounds "
         "nothing; use privacy.mode=central (the clipped update bounds any client's influence) or fedper");
  }
  if (c.privacy.mode == "sample" && c.algorithm.batch_size == 0) {
    fail("algorithm.batch_size: privacy.mode=sample needs minibatches (batch_size >= 1) for subsampling");
  }
  if (c.privacy.mode != "central" && c.privacy.target_epsilon) {
    fail("privacy.target_epsilon: only central mode solves for the noise multiplier; set privacy.noise_multiplier");
  }
  if (c.algorithm.sampling == "poisson" && (c.algorithm.name == "fedgia")) {
    fail("algorithm.sampling: fedgia uses every client every round");
  }
  if (c.secure_aggregation.enabled && c.encryption.scheme != "none") {
    fail("encryption.scheme: choose secure aggregation or homomorphic encryption, not both");
  }
  if (c.encryption.scheme != "none" && (c.encryption.poly_degree & (c.encryption.poly_degree - 1)) != 0) {
    fail("encryption.poly_degree: expected a power of two, got " + std::to_string(c.encryption.poly_degree));
  }
  const ProfilesConfig& pr = c.system.profiles;
  if (c.system.compute.distribution == "profiles") {
    const size_t n = pr.share.size();
    if (n == 0) fail("system.profiles.share: system.compute.distribution=profiles needs at least one profile");
    auto check = [&](const std::vector<double>& v, const char* key) {
      if (v.size() != n) {
        fail(fmt::format("system.profiles.{}: expected {} entries (one per profile, as in system.profiles.share), "
                         "got {}", key, n, v.size()));
      }
    };
    check(pr.gflops, "gflops");
    check(pr.up_mbps, "up_mbps");
    check(pr.down_mbps, "down_mbps");
    check(pr.latency_ms, "latency_ms");
    double total = 0.0;
    for (double x : pr.share) total += x;
    if (!(total > 0.0)) fail("system.profiles.share: the shares must not all be 0");
  } else if (!pr.share.empty() || !pr.gflops.empty() || !pr.up_mbps.empty() || !pr.down_mbps.empty() ||
             !pr.latency_ms.empty()) {
    fail("system.profiles: a device table is only used with system.compute.distribution=profiles");
  }
  const bool system_faults = c.system.availability < 1.0 || c.system.dropout > 0.0 || c.system.deadline_s > 0.0 ||
                             c.system.over_selection > 0.0;
  if (system_faults && c.algorithm.name == "fedgia") {
    fail("system: fedgia needs every client every round; availability, dropout, deadline_s and over_selection "
         "must keep their defaults");
  }
  if (c.system.partial_work && c.system.deadline_s <= 0.0) {
    fail("system.partial_work: partial work is decided by the round deadline; set system.deadline_s > 0");
  }
  if (c.system.partial_work && c.algorithm.batch_size == 0) {
    fail("system.partial_work: needs minibatch steps (algorithm.batch_size >= 1)");
  }
  if (c.system.over_selection > 0.0 && c.algorithm.sampling == "poisson") {
    fail("system.over_selection: only for fixed-size cohorts (algorithm.sampling=fixed)");
  }
  if (c.system.over_selection > 0.0 && c.privacy.mode == "central") {
    fail("system.over_selection: the server keeps the fastest K of the clients it asks, so a fast client is in a "
         "round's cohort with probability up to (1 + over_selection) K / N, not the K / N central DP accounts; "
         "turn over_selection off with privacy.mode=central");
  }
  ValidateAsync(c, fail);
  if (c.audit.canaries > 0) {
    if (c.privacy.mode != "central") {
      fail("audit.canaries: the canary audit measures central DP (privacy.mode=central: clipped updates, noise on "
           "the sum); got privacy.mode=" + c.privacy.mode);
    }
    if (c.algorithm.mode != "sync") fail("audit.canaries: implemented for synchronous rounds (algorithm.mode=sync)");
    if (c.secure_aggregation.enabled) {
      fail("audit.canaries: canaries join the server's sum in the clear; turn secure_aggregation off for the audit");
    }
  }
  if (c.audit.reconstruction) {
    if (c.model.kind != "softmax" && c.model.kind != "mlp") {
      fail("audit.reconstruction: inverts a first dense layer with bias; model.kind must be softmax or mlp, got " +
           c.model.kind);
    }
    if (c.algorithm.name != "fedavg" && c.algorithm.name != "fedsgd" && c.algorithm.name != "fedprox") {
      fail("audit.reconstruction: reads each upload as the model's update or gradient (fedavg, fedprox, fedsgd); "
           "got algorithm.name=" + c.algorithm.name);
    }
    if (c.compression.kind != "none") {
      fail("audit.reconstruction: a compressed upload is not the layer's gradient; set compression.kind=none");
    }
  }
  if (c.audit.imprint.bins > 0) {
    const ImprintConfig& im = c.audit.imprint;
    if (c.model.kind != "mlp" || c.model.hidden.empty()) {
      fail("audit.imprint.bins: the imprint layer is the first dense layer with bias followed by a ReLU; "
           "model.kind must be mlp with model.hidden set, got model.kind=" + c.model.kind);
    }
    if (im.bins < 2) fail("audit.imprint.bins: needs at least 2 bins, got " + std::to_string(im.bins));
    if (im.bins > c.model.hidden[0]) {
      fail("audit.imprint.bins: " + std::to_string(im.bins) + " bins need as many units in the first hidden layer; "
           "model.hidden[0] = " + std::to_string(c.model.hidden[0]));
    }
    if (c.algorithm.name != "fedavg" && c.algorithm.name != "fedsgd" && c.algorithm.name != "fedprox") {
      fail("audit.imprint.bins: reads each upload as the model's update or gradient (fedavg, fedprox, fedsgd); "
           "got algorithm.name=" + c.algorithm.name);
    }
    if (c.algorithm.mode != "sync") fail("audit.imprint.bins: implemented for synchronous rounds (algorithm.mode=sync)");
    if (c.compression.kind != "none") {
      fail("audit.imprint.bins: a compressed upload is not the layer's gradient; set compression.kind=none");
    }
    if (c.attack.kind != "none" || c.robust.rule != "mean") {
      fail("audit.imprint.bins: the attack rounds discard their aggregate; run it without attack.kind and with "
           "robust.rule=mean");
    }
    if (c.audit.canaries > 0) {
      fail("audit.imprint.bins: attack rounds discard their aggregate, so canaries inserted there would never reach "
           "the model; run audit.canaries in a separate run");
    }
    if (c.audit.reconstruction) {
      fail("audit.imprint.bins: audit.reconstruction would invert the crafted model's uploads; run the two attacks "
           "in separate runs");
    }
  }
  if (c.baseline.kind != "none") {
    if (c.privacy.mode != "none" || c.secure_aggregation.enabled || c.encryption.scheme != "none") {
      fail("baseline.kind: the baselines train without privacy; privacy.mode, secure_aggregation and encryption "
           "must be off");
    }
    if (c.algorithm.name == "fedpara") fail("baseline.kind: the baselines train the plain model; algorithm.name=fedpara "
                                            "changes the model");
    if (c.algorithm.name == "fedgan") fail("baseline.kind: the baselines train classifiers; algorithm.name=fedgan has none");
    if (c.baseline.kind == "data_parallel" && c.baseline.workers < 1) fail("baseline.workers: must be >= 1");
  }
  if ((c.data.dataset == "mnist_idx" || c.data.dataset == "csv" || c.data.dataset == "leaf" ||
       c.data.dataset == "cifar10" || c.data.dataset == "cifar100" ||
       (c.data.dataset == "tff_h5" && (c.data.tff_h5.train_file.empty() || c.data.tff_h5.test_file.empty()))) &&
      c.data.path.empty()) {
    fail("data.path: data.dataset=" + c.data.dataset + " needs a path");
  }
}

json ToJson(const Config& c) {
  Config copy = c;
  Writer w;
  copy.Visit(w);
  return w.out;
}

}  // namespace fedsim
