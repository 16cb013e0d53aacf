// The error secure/ throws when a protocol run fails (too few clients survive
// to reconstruct the secrets, a share fails authentication, reconstructed
// secrets disagree with the published keys). Bad arguments are InputError.
#pragma once

#include "core/error.h"

namespace fedsim {

// A secure-aggregation or encryption protocol could not complete. The run
// produced no result: no partial sum is ever returned alongside this error.
class SecAggError : public RunError {
 public:
  using RunError::RunError;
};

}  // namespace fedsim
