#include "insert_ceiling.h"

#include <sys/resource.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "mongo/collection.h"

namespace fhirshift::bench {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

double insert_all(mongo::ClientPool& pool, const std::string& collection, const std::vector<mongo::Bson>& docs,
                  int batch, int par) {
  size_t batches = (docs.size() + static_cast<size_t>(batch) - 1) / static_cast<size_t>(batch);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> inserted{0};
  std::mutex error_mutex;
  std::string first_error;
  auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < par; ++w)
    workers.emplace_back([&] {
      try {
        mongo::Client client = pool.acquire();
        mongo::Collection coll = client.collection(pool.database(), collection);
        for (size_t b = next++; b < batches; b = next++) {
          mongo::BulkWriter bulk = coll.bulk(false);
          size_t end = std::min(docs.size(), (b + 1) * static_cast<size_t>(batch));
          for (size_t i = b * static_cast<size_t>(batch); i < end; ++i) bulk.insert(docs[i].get());
          mongo::BulkResult r = bulk.execute();
          inserted += r.inserted;
          if (!r.ok()) {
            std::lock_guard lock(error_mutex);
            if (first_error.empty())
              first_error = r.write_errors.empty() ? r.write_concern_error : r.write_errors.front().message;
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(error_mutex);
        if (first_error.empty()) first_error = e.what();
      }
    });
  for (auto& t : workers) t.join();
  double seconds = seconds_since(t0);
  if (!first_error.empty() || inserted.load() != static_cast<int64_t>(docs.size()))
    throw std::runtime_error("insertMany into " + pool.database() + "." + collection + ": " +
                             std::to_string(inserted.load()) + " of " + std::to_string(docs.size()) +
                             " inserted; first error: " + first_error);
  return seconds;
}

}  // namespace fhirshift::bench
