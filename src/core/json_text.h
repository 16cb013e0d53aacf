// Checks on raw JSON text made before it is parsed.
#pragma once

#include <string_view>

namespace fedsim {

// The 1-based line on which `text` first nests deeper than `limit` levels of
// [ and { (brackets inside strings do not count), or 0 if it never does. The
// JSON parser and the code that copies and prints parsed values recurse once
// per level, so configs and checkpoint headers are refused by this scan
// before a hostile file can exhaust the stack.
int LineNestedDeeperThan(std::string_view text, int limit);

}  // namespace fedsim
