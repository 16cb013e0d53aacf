// fedsim_h5_fixtures DIR: writes the small TFF HDF5 files of
// tests/data/tff_h5_files.h for tests/e2e/h5_tff_test.sh (which has no HDF5
// writer of its own: Debian's python3 has no h5py by default), good and bad:
//   DIR/shakespeare, DIR/emnist, DIR/cifar100,
//   DIR/stackoverflow                               the files the unit tests check
//   DIR/no_examples/shakespeare_{train,test}.h5     the training file lacks /examples
//   DIR/no_field/shakespeare_{train,test}.h5        a_role has "text", not "snippets"
//   DIR/bad_dtype/shakespeare_{train,test}.h5       a_role's snippets are floats
//   DIR/bad_shape/fed_emnist_{train,test}.h5        f0000_00's pixels are [1, 28, 27]
#include <cstdio>
#include <filesystem>
#include <string>

#include "tff_h5_files.h"

int main(int argc, char** argv) {
  using namespace fedsim::testing;
  if (argc != 2) {
    std::fprintf(stderr, "usage: fedsim_h5_fixtures DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    for (const char* sub : {"shakespeare", "emnist", "cifar100", "stackoverflow", "no_examples", "no_field", "bad_dtype", "bad_shape"}) {
      std::filesystem::create_directories(dir + "/" + sub);
    }
    WriteShakespeareFiles(dir + "/shakespeare");
    WriteEmnistFiles(dir + "/emnist");
    WriteCifar100Files(dir + "/cifar100");
    WriteStackOverflowFiles(dir + "/stackoverflow");
    for (const char* sub : {"no_examples", "no_field", "bad_dtype"}) WriteShakespeareFiles(dir + "/" + sub);
    { H5Writer w(dir + "/no_examples/shakespeare_train.h5", false); }
    {
      H5Writer w(dir + "/no_field/shakespeare_train.h5");
      w.Strings("a_role", "text", {"ab"}, false);
    }
    {
      H5Writer w(dir + "/bad_dtype/shakespeare_train.h5");
      w.Floats("a_role", "snippets", {2}, {1.0f, 2.0f});
    }
    WriteEmnistFiles(dir + "/bad_shape");
    {
      H5Writer w(dir + "/bad_shape/fed_emnist_train.h5");
      w.Floats("f0000_00", "pixels", {1, 28, 27}, std::vector<float>(28 * 27, 0.0f));
      w.Ints("f0000_00", "label", {1}, {3});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fedsim_h5_fixtures: %s\n", e.what());
    return 1;
  }
  return 0;
}
