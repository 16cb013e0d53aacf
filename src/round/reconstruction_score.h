#pragma once
// What the input-reconstruction audits (ReconstructionTap, ImprintTap) share:
// how a reconstruction is scored against a client's row, and the image grid
// of reconstructions above their best matches.
#include <Eigen/Core>

#include <string>
#include <vector>

namespace fedsim {

class CheckpointReader;
class CheckpointWriter;
struct Dataset;

struct RowMatch {
  double psnr = 0.0;  // dB over the row's value range, at most 200; 0 when mse is not finite
  bool exact = false;  // every value within 1e-3 of the row's range
};

// Scores x_hat against `row`, given their mean squared error (the caller
// has it from its search for the best row).
RowMatch MatchRow(double mse, const Eigen::Ref<const Eigen::VectorXf>& x_hat,
                  const Eigen::Ref<const Eigen::VectorXf>& row);

// shown = [x_hat, row, x_hat, row, ...]: up to 16 pairs as a PGM grid, the
// reconstructions in the first row of tiles and their best matches in the
// second, each image scaled to [0, 1] by its own range (non-finite values
// drawn as 0). False (nothing written) unless the data are 1 x H x W images.
bool WriteReconstructionGrid(const Dataset& train, const std::vector<Eigen::VectorXf>& shown,
                             const std::string& path);

// A reconstruction audit's run totals in a checkpoint, under `prefix`: the
// integer counters, the PSNR sum and the last attacked round's shown pairs,
// so a resumed run reports the whole run's figures and grid. LoadAuditTotals
// returns false, changing nothing, when the checkpoint has none (a branch
// that switches the audit on starts from zero); a record of another length
// is a damaged or foreign checkpoint (InputError).
void SaveAuditTotals(CheckpointWriter& w, const std::string& prefix, const std::vector<int64_t>& counters,
                     double psnr_sum, const std::vector<Eigen::VectorXf>& shown);
bool LoadAuditTotals(const CheckpointReader& r, const std::string& prefix, std::vector<int64_t>& counters,
                     double& psnr_sum, std::vector<Eigen::VectorXf>& shown);

}  // namespace fedsim
