#include "core/json_text.h"

namespace fedsim {

int LineNestedDeeperThan(std::string_view text, int limit) {
  int depth = 0, line = 1;
  bool in_string = false, escape = false;
  for (const char ch : text) {
    if (ch == '\n') ++line;
    if (in_string) {
      if (escape) escape = false;
      else if (ch == '\\') escape = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > limit) return line;
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return 0;
}

}  // namespace fedsim
