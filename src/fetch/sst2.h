// GLUE SST-2 from the GLUE distribution's SST-2.zip: unpacked with libzip (every entry name checked for
// path traversal) and accepted only when its shape is GLUE's: headers "sentence\tlabel" (train, dev) and
// "index\tsentence" (test), 67,349 / 872 / 1,821 rows, labels 0 or 1. No hash of the zip can be learned
// offline, so none is invented; the shape check is the guard. Internal: Phase 1 calls ensure_dataset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "fetch/settings.h"

namespace nlpf {

// Expected row counts; a parameter only so that tests can check small archives (never a user option).
struct Sst2Shape {
  int64_t train_rows = 67349;
  int64_t dev_rows = 872;
  int64_t test_rows = 1821;
};

// $NLPF_HOME/datasets/sst2, downloaded from settings.sst2_url and checked against `shape` when absent.
std::filesystem::path ensure_sst2(const FetchSettings& settings, const Sst2Shape& shape = {});

// Extracts `zip_path` into the existing empty folder `destination` (a leading "SST-2/" folder is
// stripped) and checks the three splits. Throws Error(IO) naming `source` (the URL or zip), the entry or
// file, and what was wrong; the caller discards the destination on error.
void unpack_sst2_zip(const std::filesystem::path& zip_path, const std::filesystem::path& destination,
                     const Sst2Shape& shape, const std::string& source);

}  // namespace nlpf
