// calibrate_fp8: an AmaxObserver per site fed by the model's activation observer; the batches run in the
// seeded order, so the result does not depend on anything but its arguments.
#include "model/fp8_calibration.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "core/error.h"
#include "core/fp8.h"

namespace nlpf {

float Fp8Calibration::scale(const std::string& site) const {
  const auto it = amax.find(site);
  NLPF_CHECK(it != amax.end(), ErrorCode::INVALID_ARGUMENT, "fp8 calibration has no site \"", site, "\"");
  return e4m3_scale_for_amax(it->second);
}

nlohmann::json Fp8Calibration::to_json() const {
  nlohmann::json sites = nlohmann::json::object();
  for (const auto& [site, value] : amax) sites[site] = value;
  return {{"format", "e4m3"},
          {"rule", "scale = amax / 448"},
          {"examples", examples},
          {"seed", seed},
          {"amax", sites}};
}

Fp8Calibration Fp8Calibration::from_json(const nlohmann::json& j, const std::string& where) {
  NLPF_CHECK(j.is_object() && j.value("format", "") == "e4m3", ErrorCode::INVALID_ARGUMENT, where,
             ": not an fp8 (e4m3) calibration");
  NLPF_CHECK(j.contains("amax") && j["amax"].is_object() && j.contains("examples") &&
                 j["examples"].is_number_integer() && j.contains("seed") && j["seed"].is_number_unsigned(),
             ErrorCode::INVALID_ARGUMENT, where,
             ": expected \"amax\" (an object), \"examples\" and \"seed\"");
  Fp8Calibration c;
  c.examples = j["examples"].get<int64_t>();
  c.seed = j["seed"].get<uint64_t>();
  for (const auto& [site, value] : j["amax"].items()) {
    NLPF_CHECK(value.is_number() && std::isfinite(value.get<double>()) && value.get<double>() >= 0,
               ErrorCode::INVALID_ARGUMENT, where, ": amax of \"", site, "\" is ", value.dump(),
               ", expected a finite non-negative number");
    c.amax[site] = value.get<float>();
  }
  return c;
}

Fp8Calibration calibrate_fp8(BertForSequenceClassification& model, const TokenizedDataset& data,
                             int64_t examples, uint64_t seed, int64_t batch_size, int64_t max_length) {
  NLPF_CHECK(examples > 0, ErrorCode::INVALID_ARGUMENT, "--calibration-examples must be > 0, got ", examples);
  NLPF_CHECK(data.size() > 0, ErrorCode::INVALID_ARGUMENT, "fp8 calibration: the calibration set is empty");
  NLPF_CHECK(batch_size > 0, ErrorCode::INVALID_ARGUMENT, "fp8 calibration: batch size ", batch_size);
  NLPF_CHECK(model.context().device().type == DeviceType::CPU, ErrorCode::UNSUPPORTED,
             "fp8 calibration runs the fp32 model on the CPU");
  std::vector<int64_t> order = shuffled_order(data.size(), seed);
  order.resize(static_cast<size_t>(std::min<int64_t>(examples, data.size())));
  std::map<std::string, AmaxObserver> observers;
  // Rows of padding are left out: their values reach no output, and a scale stretched to cover them would
  // cost the real tokens resolution.
  model.set_activation_observer([&](const std::string& site, const Tensor& x, const Tensor* attention_mask) {
    AmaxObserver& observer = observers.try_emplace(site, site).first->second;
    const float* values = x.data<float>();
    if (attention_mask == nullptr) {
      observer.observe(std::span<const float>(values, static_cast<size_t>(x.numel())));
      return;
    }
    const int64_t rows = attention_mask->numel(), width = x.numel() / rows;
    const int32_t* mask = attention_mask->data<int32_t>();
    for (int64_t r = 0; r < rows; ++r) {
      if (mask[r] != 0)
        observer.observe(std::span<const float>(values + r * width, static_cast<size_t>(width)));
    }
  });
  Fp8Calibration result;
  result.seed = seed;
  try {
    for (size_t begin = 0; begin < order.size(); begin += static_cast<size_t>(batch_size)) {
      const size_t end = std::min(order.size(), begin + static_cast<size_t>(batch_size));
      Batch batch = make_batch(data, std::span<const int64_t>(order.data() + begin, order.data() + end),
                               PaddingMode::LONGEST, max_length);
      batch.labels.clear();
      model.forward(batch, ForwardMode::EVAL);
      result.examples += static_cast<int64_t>(end - begin);
    }
  } catch (...) {
    model.set_activation_observer(nullptr);
    throw;
  }
  model.set_activation_observer(nullptr);
  for (const auto& [site, observer] : observers) result.amax[site] = observer.amax();
  return result;
}

}  // namespace nlpf
