// Debian's chromium, headless and offline, for the dashboard tests: one-shot runs that print the
// DOM or save a screenshot after a budget of virtual time, and a live browser whose page title is
// read over the DevTools HTTP endpoint (the pages put their state in the title).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift::testing {

// `chromium` on PATH (or $FHIRSHIFT_CHROMIUM); empty when there is none.
std::string chromium_binary();

// The page's DOM after `budget` of virtual time (timers run, fetches complete), as HTML.
std::string chromium_dump_dom(const std::string& url, std::chrono::milliseconds budget);
// Saves a PNG of the page after `budget` of virtual time; false (with stderr in `error`) on
// failure.
bool chromium_screenshot(const std::string& url, std::chrono::milliseconds budget,
                         const std::filesystem::path& png, std::string& error);

class LiveChromium {
 public:
  // Starts the browser on `url`; throws std::runtime_error when it does not come up within 60 s.
  explicit LiveChromium(const std::string& url);
  ~LiveChromium();
  // The title of the tab showing `url` ("" when the tab is not there yet).
  std::string title();

 private:
  std::string url_;
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
  int devtools_port_ = 0;
};

}  // namespace fhirshift::testing
