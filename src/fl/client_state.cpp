#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/comm.h"
#include "core/error.h"
#include "core/half.h"
#include "fl/algorithm.h"

namespace fedsim {

StatePrecision ParseStatePrecision(const std::string& name) {
  if (name == "float32") return StatePrecision::kFloat32;
  if (name == "float16") return StatePrecision::kFloat16;
  throw InputError("algorithm.state_precision: expected float32 or float16, got '" + name + "'");
}

void ClientStateStore::Resize(int num_clients, int slots_per_client) {
  slots_ = slots_per_client;
  num_clients_ = num_clients;
  const size_t n = static_cast<size_t>(num_clients) * static_cast<size_t>(slots_per_client);
  f32_.clear();
  f16_.clear();
  if (precision_ == StatePrecision::kFloat32) {
    f32_.assign(n, Eigen::VectorXf());
  } else {
    f16_.assign(n, std::vector<uint16_t>());
  }
}

void ClientStateStore::Configure(StatePrecision precision, Comm* comm) {
  if (ClientsWithState() > 0) throw RunError("ClientStateStore::Configure: state already exists");
  precision_ = precision;
  comm_ = comm && comm->size() > 1 ? comm : nullptr;
  Resize(num_clients_, slots_);
}

bool ClientStateStore::Owns(int client) const { return !comm_ || client % comm_->size() == comm_->rank(); }

Eigen::Map<Eigen::VectorXf> ClientStateStore::Open(int client, int slot, int64_t size, Eigen::VectorXf& buffer) {
  if (!Owns(client)) {
    throw RunError(fmt::format("internal: client {}'s state lives on rank {}, not on rank {}", client,
                               client % comm_->size(), comm_->rank()));
  }
  const size_t i = Index(client, slot);
  // State restored from a checkpoint has the length the checkpoint gave it;
  // one this run's algorithm cannot use is a damaged or foreign checkpoint,
  // not a vector to read or write past its end.
  const int64_t held = precision_ == StatePrecision::kFloat32 ? f32_[i].size() : static_cast<int64_t>(f16_[i].size());
  if (held != 0 && held != size) {
    throw InputError(fmt::format("checkpoint: client {}'s saved state (slot {}) holds {} values, but this run's "
                                 "algorithm keeps {}",
                                 client, slot, held, size));
  }
  if (precision_ == StatePrecision::kFloat32) {
    Eigen::VectorXf& v = f32_[i];
    if (v.size() == 0) v.setZero(size);
    return Eigen::Map<Eigen::VectorXf>(v.data(), v.size());
  }
  const std::vector<uint16_t>& h = f16_[i];
  if (h.empty()) {
    buffer.setZero(size);
  } else {
    buffer.resize(static_cast<int64_t>(h.size()));
    HalvesToFloats(h.data(), static_cast<int64_t>(h.size()), buffer.data());
  }
  return Eigen::Map<Eigen::VectorXf>(buffer.data(), buffer.size());
}

void ClientStateStore::Commit(int client, int slot, const Eigen::Map<Eigen::VectorXf>& view) {
  if (precision_ == StatePrecision::kFloat32) return;  // the view is the stored vector
  std::vector<uint16_t>& h = f16_[Index(client, slot)];
  h.resize(static_cast<size_t>(view.size()));
  FloatsToHalves(view.data(), view.size(), h.data());
}

void ClientStateStore::Clear(int client) {
  for (int s = 0; s < slots_; ++s) {
    const size_t i = Index(client, s);
    if (precision_ == StatePrecision::kFloat32) {
      f32_[i] = Eigen::VectorXf();
    } else {
      std::vector<uint16_t>().swap(f16_[i]);
    }
  }
}

bool ClientStateStore::Has(int client, int slot) const { return EntrySize(Index(client, slot)) > 0; }

int64_t ClientStateStore::ClientsWithState() const {
  int64_t n = 0;
  for (int c = 0; c < num_clients_; ++c) {
    for (int s = 0; s < slots_; ++s) {
      if (Has(c, s)) {
        ++n;
        break;
      }
    }
  }
  return n;
}

int64_t ClientStateStore::Bytes() const {
  const int64_t per_value = precision_ == StatePrecision::kFloat32 ? 4 : 2;
  int64_t values = 0;
  const size_t n = static_cast<size_t>(num_clients_) * static_cast<size_t>(slots_);
  for (size_t i = 0; i < n; ++i) values += EntrySize(i);
  return values * per_value;
}

namespace {

// Part of a slot on its way from a rank to rank 0: [count][client, n]...
// then the values as stored (float32 or float16 bytes).
struct Piece {
  int64_t client, n;
  const char* values;
};

void Unpack(const std::string& packed, size_t value_bytes, std::vector<Piece>& pieces) {
  if (packed.empty()) return;
  int64_t count = 0;
  std::memcpy(&count, packed.data(), sizeof(count));
  const char* ids = packed.data() + sizeof(int64_t);
  const char* values = ids + sizeof(int64_t) * static_cast<size_t>(count);
  for (int64_t i = 0; i + 1 < count; i += 2) {
    int64_t client, n;
    std::memcpy(&client, ids + sizeof(int64_t) * static_cast<size_t>(i), sizeof(client));
    std::memcpy(&n, ids + sizeof(int64_t) * static_cast<size_t>(i + 1), sizeof(n));
    pieces.push_back({client, n, values});
    values += static_cast<size_t>(n) * value_bytes;
  }
}

constexpr int64_t kSaveChunkBytes = int64_t{1} << 28;  // per gather, distributed runs

}  // namespace

const void* ClientStateStore::EntryData(size_t i) const {
  return precision_ == StatePrecision::kFloat32 ? static_cast<const void*>(f32_[i].data())
                                                : static_cast<const void*>(f16_[i].data());
}

std::string ClientStateStore::PackRange(int slot, int first, int last) const {
  const size_t value_bytes = precision_ == StatePrecision::kFloat32 ? 4 : 2;
  std::vector<int64_t> ids;
  size_t bytes = 0;
  for (int c = first; c < last; ++c) {
    const int64_t n = EntrySize(Index(c, slot));
    if (n == 0) continue;
    ids.push_back(c);
    ids.push_back(n);
    bytes += static_cast<size_t>(n) * value_bytes;
  }
  if (ids.empty()) return std::string();
  const int64_t count = static_cast<int64_t>(ids.size());
  std::string out(sizeof(int64_t) * (1 + ids.size()) + bytes, '\0');
  char* p = out.data();
  std::memcpy(p, &count, sizeof(count));
  std::memcpy(p + sizeof(int64_t), ids.data(), sizeof(int64_t) * ids.size());
  p += sizeof(int64_t) * (1 + ids.size());
  for (size_t k = 0; k < ids.size(); k += 2) {
    const size_t len = static_cast<size_t>(ids[k + 1]) * value_bytes;
    std::memcpy(p, EntryData(Index(static_cast<int>(ids[k]), slot)), len);
    p += len;
  }
  return out;
}

void ClientStateStore::Save(CheckpointWriter& w, const std::string& prefix) const {
  const bool f32 = precision_ == StatePrecision::kFloat32;
  const size_t value_bytes = f32 ? 4 : 2;
  for (int s = 0; s < slots_; ++s) {
    const std::string name = prefix + "/" + std::to_string(s);
    // The index: (client, length) of every client with state, in client order.
    std::vector<int64_t> ids;
    int64_t values = 0;
    int longest = 0;
    for (int c = 0; c < num_clients_; ++c) {
      const int64_t n = EntrySize(Index(c, s));
      if (n == 0) continue;
      ids.push_back(c);
      ids.push_back(n);
      values += n;
      longest = std::max(longest, static_cast<int>(n));
    }
    if (comm_) {
      comm_->AllSum(&values, 1);
      comm_->AllMax(&longest, 1);
      std::string mine(reinterpret_cast<const char*>(ids.data()), sizeof(int64_t) * ids.size());
      const std::vector<std::string> parts = comm_->Gather(mine, 0);
      if (comm_->root()) {
        std::vector<std::pair<int64_t, int64_t>> all;
        for (const auto& p : parts) {
          for (size_t k = 0; k + 1 < p.size() / sizeof(int64_t); k += 2) {
            int64_t c, n;
            std::memcpy(&c, p.data() + k * sizeof(int64_t), sizeof(c));
            std::memcpy(&n, p.data() + (k + 1) * sizeof(int64_t), sizeof(n));
            all.emplace_back(c, n);
          }
        }
        std::sort(all.begin(), all.end());
        ids.clear();
        for (const auto& [c, n] : all) {
          ids.push_back(c);
          ids.push_back(n);
        }
      }
    }
    w.I64(name + "/ids", ids);
    // The values, streamed as stored (float16 as halves).
    w.Begin(name + "/data", f32 ? 1 : 4, values);
    if (!comm_) {
      for (size_t k = 0; k < ids.size(); k += 2) w.Append(EntryData(Index(static_cast<int>(ids[k]), s)), ids[k + 1]);
      continue;
    }
    // Distributed: every rank sends its clients of a range of ids to rank 0,
    // which writes them in client order; ranges are sized so that one holds
    // at most kSaveChunkBytes, whatever the population.
    if (values == 0) continue;
    const int chunk = static_cast<int>(
        std::max<int64_t>(1, kSaveChunkBytes / (static_cast<int64_t>(longest) * static_cast<int64_t>(value_bytes))));
    for (int first = 0; first < num_clients_; first += chunk) {
      const int last = static_cast<int>(std::min<int64_t>(num_clients_, static_cast<int64_t>(first) + chunk));
      const std::vector<std::string> parts = comm_->Gather(PackRange(s, first, last), 0);
      if (!comm_->root()) continue;
      std::vector<Piece> pieces;
      for (const auto& p : parts) Unpack(p, value_bytes, pieces);
      std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.client < b.client; });
      for (const Piece& p : pieces) w.Append(p.values, p.n);
    }
  }
}

void ClientStateStore::Load(const CheckpointReader& r, const std::string& prefix) {
  for (int s = 0; s < slots_; ++s) {
    const std::string name = prefix + "/" + std::to_string(s);
    const std::vector<int64_t> ids = r.I64(name + "/ids");
    const int64_t total = r.Count(name + "/data");
    int64_t pos = 0;
    for (size_t i = 0; i + 1 < ids.size(); i += 2) {
      const int64_t client = ids[i], n = ids[i + 1];
      if (client < 0 || client >= num_clients_ || n < 0 || pos + n > total) {
        throw InputError("checkpoint: client state '" + prefix + "' does not fit this run's population");
      }
      if (Owns(static_cast<int>(client))) {
        const size_t e = Index(static_cast<int>(client), s);
        if (precision_ == StatePrecision::kFloat32) {
          f32_[e].resize(n);
          r.ReadFloats(name + "/data", pos, n, f32_[e].data());
        } else {
          f16_[e].resize(static_cast<size_t>(n));
          r.ReadHalves(name + "/data", pos, n, f16_[e].data());
        }
      }
      pos += n;
    }
  }
}

const char* UploadKindName(UploadKind kind) {
  switch (kind) {
    case UploadKind::kModelDelta: return "model_delta";
    case UploadKind::kGradient: return "gradient";
    case UploadKind::kComposite: return "composite";
    case UploadKind::kEncoded: return "encoded";
    case UploadKind::kParameters: return "parameters";
  }
  return "unknown";
}

}  // namespace fedsim
