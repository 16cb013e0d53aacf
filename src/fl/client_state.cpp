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

// One rank's part of a slot on its way to rank 0: [count][client, n]... then
// the float32 values.
std::string Pack(const std::vector<int64_t>& ids, const std::vector<float>& data) {
  const int64_t count = static_cast<int64_t>(ids.size());
  std::string out(sizeof(int64_t) * (1 + ids.size()) + sizeof(float) * data.size(), '\0');
  char* p = out.data();
  std::memcpy(p, &count, sizeof(count));
  std::memcpy(p + sizeof(int64_t), ids.data(), sizeof(int64_t) * ids.size());
  std::memcpy(p + sizeof(int64_t) * (1 + ids.size()), data.data(), sizeof(float) * data.size());
  return out;
}

struct Piece {
  int64_t client, n;
  const float* values;
};

// Appends the entries of a packed part to `pieces` (they point into `packed`).
void Unpack(const std::string& packed, std::vector<Piece>& pieces) {
  int64_t count = 0;
  std::memcpy(&count, packed.data(), sizeof(count));
  const char* ids = packed.data() + sizeof(int64_t);
  const float* values = reinterpret_cast<const float*>(ids + sizeof(int64_t) * static_cast<size_t>(count));
  for (int64_t i = 0; i + 1 < count; i += 2) {
    int64_t client, n;
    std::memcpy(&client, ids + sizeof(int64_t) * static_cast<size_t>(i), sizeof(client));
    std::memcpy(&n, ids + sizeof(int64_t) * static_cast<size_t>(i + 1), sizeof(n));
    pieces.push_back({client, n, values});
    values += n;
  }
}

}  // namespace

void ClientStateStore::Save(CheckpointWriter& w, const std::string& prefix) const {
  for (int s = 0; s < slots_; ++s) {
    std::vector<int64_t> ids;
    std::vector<float> data;
    for (int c = 0; c < num_clients_; ++c) {
      const size_t i = Index(c, s);
      const int64_t n = EntrySize(i);
      if (n == 0) continue;
      ids.push_back(c);
      ids.push_back(n);
      const size_t at = data.size();
      data.resize(at + static_cast<size_t>(n));
      if (precision_ == StatePrecision::kFloat32) {
        std::copy(f32_[i].data(), f32_[i].data() + n, data.data() + at);
      } else {
        HalvesToFloats(f16_[i].data(), n, data.data() + at);
      }
    }
    if (comm_) {
      // Every rank's part to rank 0, merged there in client order (each
      // client lives on one rank, so ids never repeat).
      const std::vector<std::string> parts = comm_->Gather(Pack(ids, data), 0);
      if (!comm_->root()) continue;
      std::vector<Piece> pieces;
      for (const auto& p : parts) Unpack(p, pieces);
      std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.client < b.client; });
      ids.clear();
      data.clear();
      for (const Piece& p : pieces) {
        ids.push_back(p.client);
        ids.push_back(p.n);
        data.insert(data.end(), p.values, p.values + p.n);
      }
    }
    w.I64(prefix + "/" + std::to_string(s) + "/ids", ids);
    w.F32(prefix + "/" + std::to_string(s) + "/data", data.data(), static_cast<int64_t>(data.size()));
  }
}

void ClientStateStore::Load(const CheckpointReader& r, const std::string& prefix) {
  for (int s = 0; s < slots_; ++s) {
    const std::vector<int64_t> ids = r.I64(prefix + "/" + std::to_string(s) + "/ids");
    const Eigen::VectorXf data = r.F32(prefix + "/" + std::to_string(s) + "/data");
    int64_t pos = 0;
    for (size_t i = 0; i + 1 < ids.size(); i += 2) {
      const int64_t client = ids[i], n = ids[i + 1];
      if (client < 0 || client >= num_clients_ || n < 0 || pos + n > data.size()) {
        throw InputError("checkpoint: client state '" + prefix + "' does not fit this run's population");
      }
      if (Owns(static_cast<int>(client))) {
        const size_t e = Index(static_cast<int>(client), s);
        if (precision_ == StatePrecision::kFloat32) {
          f32_[e] = data.segment(pos, n);
        } else {
          f16_[e].resize(static_cast<size_t>(n));
          FloatsToHalves(data.data() + pos, n, f16_[e].data());
        }
      }
      pos += n;
    }
  }
}

}  // namespace fedsim
