// FP8 activation calibration (issue 13, item 1): the largest |x| at the input of every linear layer over a
// number of training examples, from which each GEMM input's E4M3 scale is amax / 448 (core/fp8.h; the rule in
// docs/ENGINE.md). The examples are the first `examples` of a seeded shuffle of the training set, run through
// the fp32 model's EVAL forward (no dropout), so the scales are a pure function of (model, data, examples,
// seed), and they are stored with the run (to_json / from_json) so that every later measurement reuses them.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "model/bert_model.h"
#include "text/batching.h"

namespace nlpf {

struct Fp8Calibration {
  std::map<std::string, float> amax;  // by BertForSequenceClassification's observer site
  int64_t examples = 0;               // examples observed
  uint64_t seed = 0;

  // The E4M3 scale of a site (amax / 448); INVALID_ARGUMENT naming the site when it was not calibrated.
  float scale(const std::string& site) const;
  nlohmann::json to_json() const;
  // INVALID_ARGUMENT naming `where` and the field for anything malformed (a negative or non-finite amax,
  // ...).
  static Fp8Calibration from_json(const nlohmann::json& j, const std::string& where);
};

// Runs min(examples, data.size()) examples of `data` (tokenised to max_length), in batches of batch_size
// padded to their longest, through model's EVAL forward on the CPU; padded tokens' rows are not observed.
// INVALID_ARGUMENT for examples <= 0 or an empty set; NUMERIC naming the site if an activation is not finite.
Fp8Calibration calibrate_fp8(BertForSequenceClassification& model, const TokenizedDataset& data,
                             int64_t examples, uint64_t seed, int64_t batch_size, int64_t max_length);

}  // namespace nlpf
