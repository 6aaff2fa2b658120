#include "legacy_options.h"

#include <spdlog/spdlog.h>

namespace fhirshift::cli {
namespace {

struct Ignored {
  const char* name;
  const char* why;
};

constexpr const char* kPipelineKnob =
    "tunes the legacy tool's read/index pipeline; fhirshift sizes its own with --mongoBatch and "
    "--mongoPar";

// The legacy tool's options without a meaning here. Options that change what is written
// (--convertAbsoluteUrlsToRelative, --useUcumConversion) or carry other options (--settings) are
// deliberately absent: ignoring them would change a migration silently, so they stay usage errors.
constexpr Ignored kIgnored[] = {
    {"--license", "fhirshift needs no license file"},
    {"--mongoExistQryPar",
     "fhirshift looks up existing versions in one query per chunk, not per resource"},
    {"--readPar", kPipelineKnob},
    {"--readBuffer", kPipelineKnob},
    {"--metaPar", kPipelineKnob},
    {"--metaBuffer", kPipelineKnob},
    {"--typePar", kPipelineKnob},
    {"--typeBuffer", kPipelineKnob},
    {"--absRelPar", kPipelineKnob},
    {"--absRelBuffer", kPipelineKnob},
    {"--indexPar", kPipelineKnob},
    {"--indexBuffer", kPipelineKnob},
    {"--maxActiveRes", kPipelineKnob},
};

}  // namespace

void LegacyOptions::add_to(CLI::App* sub) {
  for (const Ignored& option : kIgnored) {
    auto given = given_;
    std::string name = option.name;
    sub->add_option_function<std::string>(
           name, [given, name](const std::string& value) { (*given)[name] = value; },
           std::string("Accepted from the legacy tool's runbooks and ignored: ") + option.why)
        ->group("Legacy options (accepted, no effect)");
  }
}

void LegacyOptions::log_notices() const {
  for (const Ignored& option : kIgnored)
    if (auto it = given_->find(option.name); it != given_->end())
      spdlog::info("{} {}: accepted from the legacy tool's runbook and ignored ({})", it->first,
                   it->second, option.why);
}

}  // namespace fhirshift::cli
