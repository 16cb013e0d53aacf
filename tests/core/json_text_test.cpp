#include "core/json_text.h"

#include <catch2/catch.hpp>

#include <string>

namespace fedsim {

TEST_CASE("json text: the line where nesting first passes the limit", "[core]") {
  CHECK(LineNestedDeeperThan(R"({"a": [1, 2], "b": {"c": 3}})", 2) == 0);
  CHECK(LineNestedDeeperThan("{\n \"a\": {\n  \"b\": [\n   1]}}", 2) == 3);
  // Exactly at the limit is allowed; one more level is not.
  CHECK(LineNestedDeeperThan("[[[]]]", 3) == 0);
  CHECK(LineNestedDeeperThan("[[[[]]]]", 3) == 1);
  // Depth is a running count: closed brackets give their levels back.
  CHECK(LineNestedDeeperThan("[[]],[[]],[[]]", 2) == 0);
}

TEST_CASE("json text: brackets inside strings, escaped quotes included, do not count", "[core]") {
  CHECK(LineNestedDeeperThan(R"({"k": "[[[[{{{{"})", 1) == 0);
  CHECK(LineNestedDeeperThan(R"({"k": "a \" [[[[ \\"})", 1) == 0);
  // After an escaped backslash the quote closes the string, so the next [ counts.
  CHECK(LineNestedDeeperThan(R"({"k": "\\", "v": [1]})", 1) == 1);
  const std::string deep(100000, '[');
  CHECK(LineNestedDeeperThan(deep, 64) == 1);
}

}  // namespace fedsim
