// Errors thrown by fedsim's library code. Library code never prints and never
// exits; src/cli/ catches once and maps these to exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace fedsim {

// Bad input from the user: a config key, a data file, a command-line value.
// The message names the file, the JSON path or the line. CLI exit code 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The run itself failed (an I/O error writing results, an internal invariant).
// CLI exit code 1.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fedsim
