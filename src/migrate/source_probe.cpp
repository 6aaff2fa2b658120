#include "migrate/source_probe.h"

#include <spdlog/spdlog.h>

#include "mongo/collection.h"
#include "mongo/error.h"

namespace fhirshift::migrate {

SourceProbe::SourceProbe(mongo::ClientPool& pool, std::string database, std::string collection,
                         Throttle& throttle)
    : pool_(pool),
      database_(std::move(database)),
      collection_(std::move(collection)),
      throttle_(throttle) {
  thread_ = std::thread([this] { run(); });
}

SourceProbe::~SourceProbe() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void SourceProbe::run() {
  std::optional<mongo::Client> client;
  bson_oid_t nobody;
  bson_oid_init_from_string(&nobody, "000000000000000000000000");
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, kInterval, [this] { return stop_; })) return;
    }
    if (!throttle_.limits_latency()) continue;
    try {
      if (!client) client.emplace(pool_.acquire());
      mongo::Collection coll = client->collection(database_, collection_);
      mongo::Builder f;
      f.append("_id", nobody);
      mongo::Bson fd = f.extract();
      auto t0 = std::chrono::steady_clock::now();
      coll.find_one(fd.get());
      throttle_.record_latency(std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - t0));
    } catch (const mongo::MongoError& e) {
      // The reader's own retries report an unreachable source; a failed probe is no measure.
      spdlog::debug("source latency probe failed: {}", e.what());
    }
  }
}

}  // namespace fhirshift::migrate
