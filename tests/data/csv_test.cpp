#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using testing::TempDir;
using testing::WriteText;

TEST_CASE("LoadCsv reads labels and features", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.File("d.csv");
  SECTION("header, label first, blank and CRLF lines") {
    WriteText(path, "label,a,b\r\n2,0.5,-1\r\n\r\n0, 1e2 ,+3\n1,-0.25,4\n");
    const Dataset ds = LoadCsv(path, 0, true);
    REQUIRE(ds.size() == 3);
    REQUIRE(ds.dim() == 2);
    CHECK(ds.y == std::vector<int>{2, 0, 1});
    CHECK(ds.num_classes == 3);
    CHECK(ds.x(0, 0) == 0.5f);
    CHECK(ds.x(0, 1) == -1.0f);
    CHECK(ds.x(1, 0) == 100.0f);
    CHECK(ds.x(1, 1) == 3.0f);
    CHECK(ds.x(2, 0) == -0.25f);
    CHECK(ds.x(2, 1) == 4.0f);
    CHECK(ds.user.empty());
  }
  SECTION("no header, label in the last column, integral label written as 4.0") {
    WriteText(path, "1.5,2.5,4.0\n3,4,0\n");
    const Dataset ds = LoadCsv(path, 2, false);
    REQUIRE(ds.size() == 2);
    CHECK(ds.y == std::vector<int>{4, 0});
    CHECK(ds.num_classes == 5);
    CHECK(ds.x(0, 0) == 1.5f);
    CHECK(ds.x(0, 1) == 2.5f);
    CHECK(ds.x(1, 0) == 3.0f);
    CHECK(ds.x(1, 1) == 4.0f);
  }
}

TEST_CASE("LoadCsv errors name the file and line", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.File("bad.csv");
  auto expect = [&](const std::string& text, const std::string& line_tag, const std::string& what) {
    WriteText(path, text);
    CHECK_THROWS_AS(LoadCsv(path, 0, true), InputError);
    CHECK_THROWS_WITH(LoadCsv(path, 0, true), StartsWith(path + line_tag) && Contains(what));
  };
  const std::string head = "y,a,b\n1,2,3\n";
  SECTION("missing field") { expect(head + "1,2,3\n0,5\n", ":4:", "2 fields, expected 3"); }
  SECTION("extra field") { expect(head + "\n0,5,6,7\n", ":4:", "4 fields, expected 3"); }
  SECTION("empty field") { expect(head + "0,,6\n", ":3:", "column 2 is empty"); }
  SECTION("non-numeric") { expect(head + "0,1,x7\n", ":3:", "'x7' is not a number"); }
  SECTION("trailing junk") { expect(head + "0,1,7kg\n", ":3:", "'7kg' is not a number"); }
  SECTION("nan") { expect(head + "1,2,3\n0,nan,6\n", ":4:", "not a finite number"); }
  SECTION("inf") { expect(head + "0,-inf,6\n", ":3:", "not a finite number"); }
  SECTION("overflows a float") { expect(head + "0,1e300,6\n", ":3:", "does not fit in a float"); }
  SECTION("negative label") { expect(head + "-1,2,3\n", ":3:", "not a non-negative integer"); }
  SECTION("fractional label") { expect(head + "1,2,3\n2.5,2,3\n", ":4:", "not a non-negative integer"); }
  SECTION("nan label") { expect(head + "nan,2,3\n", ":3:", "not a finite number"); }
  SECTION("header only") {
    WriteText(path, "y,a,b\n");
    CHECK_THROWS_WITH(LoadCsv(path, 0, true), StartsWith(path + ":") && Contains("empty file"));
  }
  SECTION("empty file") {
    WriteText(path, "");
    CHECK_THROWS_WITH(LoadCsv(path, 0, false), StartsWith(path + ":") && Contains("empty file"));
  }
  SECTION("label column beyond the row") {
    WriteText(path, "1,2,3\n");
    CHECK_THROWS_WITH(LoadCsv(path, 3, false), StartsWith(path + ":1:") && Contains("label_column"));
  }
  SECTION("missing file") {
    CHECK_THROWS_WITH(LoadCsv(dir.File("none.csv"), 0, true), StartsWith(dir.File("none.csv") + ":"));
  }
}

}  // namespace
}  // namespace fedsim
