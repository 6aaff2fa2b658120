// While a --max-source-latency limit is set, asks the database a minimal question twice a second
// and hands its response time to the Throttle: the migrator's own reads alone say little while
// they are throttled to a trickle, and nothing while it waits between Continuous polls.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "migrate/throttle.h"
#include "mongo/client.h"

namespace fhirshift::migrate {

class SourceProbe {
 public:
  static constexpr auto kInterval = std::chrono::milliseconds(500);

  // The probe is a find of one `_id` that no entry has (an index lookup on MongoDB and on
  // FerretDB, never a scan) in `collection` of `database`.
  SourceProbe(mongo::ClientPool& pool, std::string database, std::string collection,
              Throttle& throttle);
  ~SourceProbe();
  SourceProbe(const SourceProbe&) = delete;
  SourceProbe& operator=(const SourceProbe&) = delete;

 private:
  void run();

  mongo::ClientPool& pool_;
  std::string database_, collection_;
  Throttle& throttle_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace fhirshift::migrate
