// Numeric CSV: comma-separated, one sample per line, no quoting. Blank lines
// are skipped (but counted in line numbers); spaces around fields are ignored.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

// Same bound as data.synthetic.num_classes: a larger label is almost surely
// not a class id (and would make an absurdly wide output layer).
constexpr int kMaxClasses = 100000;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    fields.push_back(
        Trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return fields;
}

// Parses one numeric field; throws "path:line: ..." naming the 1-based column.
double ParseField(std::string_view field, const std::string& path, long line, size_t column) {
  if (field.empty()) throw InputError(fmt::format("{}:{}: column {} is empty", path, line, column + 1));
  std::string_view s = field;
  if (s.size() > 1 && s.front() == '+') s.remove_prefix(1);
  double v = 0.0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) {
    throw InputError(fmt::format("{}:{}: column {}: '{}' is out of range", path, line, column + 1, field));
  }
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    throw InputError(fmt::format("{}:{}: column {}: '{}' is not a number", path, line, column + 1, field));
  }
  if (!std::isfinite(v)) {
    throw InputError(fmt::format("{}:{}: column {}: '{}' is not a finite number", path, line, column + 1, field));
  }
  return v;
}

}  // namespace

Dataset LoadCsv(const std::string& path, int label_column, bool header, int client_column,
                std::vector<std::string>* clients) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open", path));

  std::vector<float> values;
  std::vector<int> labels;
  size_t num_fields = 0;
  long first_data_line = 0;
  long line_no = 0;
  int max_label = -1;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view view(line);
    if (line_no == 1 && view.substr(0, 3) == "\xEF\xBB\xBF") view.remove_prefix(3);  // UTF-8 byte-order mark
    if (header && line_no == 1) continue;
    if (Trim(view).empty()) continue;
    const std::vector<std::string_view> fields = SplitFields(view);
    if (num_fields == 0) {
      num_fields = fields.size();
      first_data_line = line_no;
      if (static_cast<size_t>(label_column) >= num_fields) {
        throw InputError(fmt::format("{}:{}: data.csv.label_column is {} (0-based) but the row has {} fields", path,
                                     line_no, label_column, num_fields));
      }
      if (client_column >= 0 && static_cast<size_t>(client_column) >= num_fields) {
        throw InputError(fmt::format("{}:{}: data.csv.client_column is {} (0-based) but the row has {} fields", path,
                                     line_no, client_column, num_fields));
      }
      if (num_fields < (client_column >= 0 ? 3u : 2u)) {
        throw InputError(fmt::format("{}:{}: the row has only a label{} column and no features", path, line_no,
                                     client_column >= 0 ? " and a client" : ""));
      }
    } else if (fields.size() != num_fields) {
      throw InputError(fmt::format("{}:{}: {} fields, expected {} as in line {}", path, line_no, fields.size(),
                                   num_fields, first_data_line));
    }
    for (size_t c = 0; c < fields.size(); ++c) {
      if (client_column >= 0 && c == static_cast<size_t>(client_column)) {
        if (fields[c].empty()) throw InputError(fmt::format("{}:{}: the client id (column {}) is empty", path, line_no, c + 1));
        if (clients != nullptr) clients->emplace_back(fields[c]);
        continue;
      }
      const double v = ParseField(fields[c], path, line_no, c);
      if (c == static_cast<size_t>(label_column)) {
        if (v < 0 || v != std::floor(v)) {
          throw InputError(fmt::format("{}:{}: label '{}' (column {}) is not a non-negative integer", path, line_no,
                                       fields[c], c + 1));
        }
        if (v >= kMaxClasses) {
          throw InputError(fmt::format("{}:{}: label '{}' (column {}) is too large: at most {} classes are supported",
                                       path, line_no, fields[c], c + 1, kMaxClasses));
        }
        labels.push_back(static_cast<int>(v));
        max_label = std::max(max_label, labels.back());
      } else {
        const float f = static_cast<float>(v);
        if (!std::isfinite(f)) {
          throw InputError(
              fmt::format("{}:{}: column {}: '{}' does not fit in a float", path, line_no, c + 1, fields[c]));
        }
        values.push_back(f);
      }
    }
  }
  if (in.bad()) throw InputError(fmt::format("{}: read error", path));
  if (labels.empty()) {
    throw InputError(fmt::format("{}: empty file: no data rows{}", path, header ? " after the header line" : ""));
  }

  Dataset ds;
  const int n = static_cast<int>(labels.size());
  const int d = static_cast<int>(num_fields) - 1 - (client_column >= 0 ? 1 : 0);
  ds.x = Eigen::Map<const RowMatrix>(values.data(), n, d);
  ds.y = std::move(labels);
  ds.num_classes = max_label + 1;
  return ds;
}

}  // namespace fedsim
