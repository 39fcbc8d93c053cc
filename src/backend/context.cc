// The CPU execution context and the tensor copy helpers (plain C++: a CUDA context does the device side).
#include "backend/context.h"

#include <cstring>
#include <utility>

#include "core/error.h"

namespace nlpf {
namespace {

class CpuContext final : public ExecutionContext {
 public:
  CpuContext() : ExecutionContext(Device{DeviceType::CPU, 0}) {}
  Allocator& allocator() override { return host_allocator(); }
  void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) override {
    NLPF_CHECK(!dst_on_device && !src_on_device, ErrorCode::INTERNAL, "the CPU context has no device memory");
    if (bytes > 0) std::memmove(dst, src, bytes);
  }
  void fill_zero_bytes(void* dst, size_t bytes) override {
    if (bytes > 0) std::memset(dst, 0, bytes);
  }
};

// True when `t` is on ctx's device (and that is not the host); INVALID_ARGUMENT when it is on another device.
bool on_context_device(const ExecutionContext& ctx, const Tensor& t, const char* name) {
  if (t.device().type == DeviceType::CPU) return false;
  NLPF_CHECK(t.device() == ctx.device(), ErrorCode::INVALID_ARGUMENT, name, " is on cuda:", t.device().index,
             " but the context is on ", ctx.device().type == DeviceType::CPU ? "the CPU" : "another device");
  return true;
}

}  // namespace

void ExecutionContext::set_autotune_candidates(int count) {
  NLPF_CHECK(count >= 1 && count <= kMaxAutotuneCandidates, ErrorCode::INVALID_ARGUMENT,
             "autotune candidates ", count, " (expected 1 to ", kMaxAutotuneCandidates, ")");
  autotune_candidates_ = count;
}

void ExecutionContext::set_autotune_rounds(int rounds) {
  NLPF_CHECK(rounds >= 1 && rounds <= kMaxAutotuneRounds, ErrorCode::INVALID_ARGUMENT, "autotune rounds ",
             rounds, " (expected 1 to ", kMaxAutotuneRounds, ")");
  autotune_rounds_ = rounds;
}

void ExecutionContext::set_autotune_replay(std::vector<GemmAutotuneRecord> records) {
  std::map<std::string, GemmAutotuneRecord> by_plan;
  for (GemmAutotuneRecord& r : records) {
    const auto candidates = static_cast<int64_t>(r.candidate_ms.size());
    NLPF_CHECK(r.chosen >= 0 && r.chosen < candidates && r.candidate_ms[r.chosen] >= 0.0f,
               ErrorCode::INVALID_ARGUMENT, "autotune replay: plan ", r.plan, " chose candidate ", r.chosen,
               " of ", candidates, ", not a timed one");
    const std::string plan = r.plan;
    NLPF_CHECK(by_plan.emplace(plan, std::move(r)).second, ErrorCode::INVALID_ARGUMENT,
               "autotune replay: two records of plan ", plan);
  }
  autotune_replay_ = std::move(by_plan);
}

const GemmAutotuneRecord* ExecutionContext::autotune_replay(const std::string& plan) const {
  const auto it = autotune_replay_.find(plan);
  return it == autotune_replay_.end() ? nullptr : &it->second;
}

std::unique_ptr<CapturedWork> ExecutionContext::capture(const std::function<void()>& work) {
  class Rerun final : public CapturedWork {
   public:
    explicit Rerun(std::function<void()> work) : work_(std::move(work)) {}
    void replay() override { work_(); }

   private:
    std::function<void()> work_;
  };
  return std::make_unique<Rerun>(work);
}

ExecutionContext& cpu_context() {
  static CpuContext cpu;
  return cpu;
}

Tensor empty_tensor(ExecutionContext& ctx, DType dtype, Shape shape) {
  return Tensor::empty(dtype, std::move(shape), ctx.allocator());
}

Tensor to_device(ExecutionContext& ctx, const Tensor& tensor) {
  Tensor out = empty_tensor(ctx, tensor.dtype(), tensor.shape());
  copy_tensor(ctx, out, tensor);
  return out;
}

Tensor to_host(ExecutionContext& ctx, const Tensor& tensor) {
  Tensor out = Tensor::empty(tensor.dtype(), tensor.shape());
  copy_tensor(ctx, out, tensor);
  return out;
}

void copy_tensor(ExecutionContext& ctx, Tensor& dst, const Tensor& src) {
  NLPF_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(), ErrorCode::INVALID_ARGUMENT,
             "copy_tensor: dst ", shape_string(dst.shape()), " ", dtype_name(dst.dtype()), " and src ",
             shape_string(src.shape()), " ", dtype_name(src.dtype()), " differ in dtype or element count");
  ctx.copy_bytes(dst.raw_data(), on_context_device(ctx, dst, "copy_tensor: dst"), src.raw_data(),
                 on_context_device(ctx, src, "copy_tensor: src"), src.nbytes());
}

void fill_zero(ExecutionContext& ctx, Tensor& tensor) {
  if (on_context_device(ctx, tensor, "fill_zero: tensor")) {
    ctx.fill_zero_bytes(tensor.raw_data(), tensor.nbytes());
  } else if (tensor.nbytes() > 0) {
    std::memset(tensor.raw_data(), 0, tensor.nbytes());
  }
}

}  // namespace nlpf
