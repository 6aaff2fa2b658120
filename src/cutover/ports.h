// The small interfaces the cut-over state machine drives. Real implementations talk HTTP, the
// HAProxy runtime API and the `fhirshift verify` engine (adapters.h); unit tests pass fakes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cutover/haproxy_runtime.h"

namespace fhirshift::cutover {

using WallTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;

// --- the FHIR server traffic moves to: is it ready? ------------------------------------------

struct ReadyCheck {
  bool ok = false;
  std::string detail;  // status code and body, for the log
};

// Nothing but FHIR is asked of the servers: readiness is a GET of a configurable path (`/metadata`
// by default) answering 2xx.
class ServerHealth {
 public:
  virtual ~ServerHealth() = default;
  // "http://host:port/metadata": what ready() GETs.
  virtual std::string url() const = 0;
  virtual ReadyCheck ready() = 0;
};

// --- the migrator's GET /progress -----------------------------------------------------------

struct Progress {
  std::string mode;
  std::string phase;
  bool caught_up = false;
  bool paused = false;   // by the operator or a cut-over (POST /pause)
  std::string paused_by;  // "operator", "cutover" (for its final verify), or "" (not said)
  double lag_seconds = 0;
  int64_t entries_read = 0;
  int64_t entries_written = 0;
  int64_t quarantined = 0;
  int64_t conflicts = 0;
  int64_t errors = 0;
  std::optional<WallTime> last_poll_at;
  // Polls begun and the last one whose entries are all applied (a poll numbered above a
  // polls_started read at some moment began after it). Absent from an older migrator.
  std::optional<int64_t> polls_started;
  std::optional<int64_t> polls_done;
  // A poll is reading the source (false: between polls, or its poll abandoned by a pause). Absent
  // from an older migrator.
  std::optional<bool> reading;
  std::string source_high_water_id;
  std::string raw;
};

// Reads the JSON document of GET /progress; throws std::runtime_error naming the missing field.
Progress parse_progress(const std::string& json);

class ProgressSource {
 public:
  virtual ~ProgressSource() = default;
  virtual std::string url() const = 0;
  // Throws when the migrator does not answer.
  virtual Progress progress() = 0;
  // Holds the migrator's reading (POST /pause) and lets it go on (POST /resume). Throws when the
  // migrator does not answer or refuses.
  virtual void pause() = 0;
  virtual void resume() = 0;
  // Asks a Continuous migrator to poll as soon as its current poll ends (POST /poll), instead of
  // after its --pollInterval.
  virtual void poll_now() = 0;
};

// --- verification (`fhirshift verify`) -------------------------------------------------------

struct VerifyRequest {
  std::string mode;                  // "counts", "full", "sample"
  std::optional<std::string> since;  // ISO-8601 UTC
  std::chrono::milliseconds timeout{0};  // 0: the verifier's default
  // Clients still write and the migrator trails them by its poll cycle: a difference must persist
  // longer before it counts (the verifies before the fence).
  bool writes_flowing = false;
};

struct VerifyOutcome {
  bool equal = false;
  int exit_code = -1;
  std::string verdict;  // "EQUAL" or "DIFFERENT: ..." or what went wrong
  std::optional<std::string> source_high_water_lu;
  std::chrono::milliseconds took{0};
  // Quarantined entries the verdict counted as accounted for (accepted in review, or superseded by
  // a newer version), one line each: they are part of what the cut-over switches to.
  std::vector<std::string> quarantine_accounted;
};

// The cut-over's final verify, started before the fence so that its start-up (process, search
// definitions, connections) is not part of the write pause. It reads each store only once told
// that the store is final, so its read of the source overlaps the migrator's drain.
class StagedVerify {
 public:
  virtual ~StagedVerify() = default;  // one not finished is cancelled
  virtual void source_final() = 0;  // writes are held and none is still in flight to the source
  virtual void target_final() = 0;  // the migrator has drained (and is paused)
  // The verdict, after both calls above; `timeout` counts from this call. `took` is the time from
  // target_final to the verdict: the part of the write pause that is the verify's alone.
  virtual VerifyOutcome finish(std::chrono::milliseconds timeout) = 0;
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  // The exact command, passwords redacted (for logs and --dry-run).
  virtual std::string describe(const VerifyRequest& request) const = 0;
  virtual VerifyOutcome verify(const VerifyRequest& request) = 0;
  // Starts a staged verify (mode full with `since`). Throws when it cannot start.
  virtual std::unique_ptr<StagedVerify> start(const VerifyRequest& request) = 0;
};

// --- the proxy ------------------------------------------------------------------------------

class Proxy {
 public:
  virtual ~Proxy() = default;
  virtual std::string describe() const = 0;  // "HAProxy runtime API at /run/haproxy/admin.sock"
  virtual ServerState state(const std::string& backend, const std::string& server) = 0;
  virtual void set_state(const std::string& backend, const std::string& server, AdminState s) = 0;
  // "0" or "100%" (of the configured weight).
  virtual void set_weight(const std::string& backend, const std::string& server,
                          const std::string& weight) = 0;
  // Requests the server has been sent since HAProxy started (`show stat` stot), to know for sure
  // whether a server ever received traffic.
  virtual int64_t sessions_total(const std::string& backend, const std::string& server) = 0;
  // The write fence in the proxy (fhirshift_fence.lua), named after the backend it protects.
  // Raising it holds new writes; lifting it lets held writes proceed to whichever server serves.
  // Both return the state afterwards; every call throws when the proxy has no fence.
  virtual FenceStatus fence_status(const std::string& backend) = 0;
  virtual FenceStatus set_fence(const std::string& backend, bool on) = 0;
};

// --- time -----------------------------------------------------------------------------------

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime wall_now() = 0;
  virtual SteadyTime steady_now() = 0;
  virtual void sleep_for(std::chrono::milliseconds d) = 0;
};

class SystemClock : public Clock {
 public:
  WallTime wall_now() override { return std::chrono::system_clock::now(); }
  SteadyTime steady_now() override { return std::chrono::steady_clock::now(); }
  void sleep_for(std::chrono::milliseconds d) override;
};

// "2024-05-01T12:00:00.123Z"
std::string format_iso8601(WallTime t);
// Accepts what format_iso8601 prints, plain dates and offsets; nullopt when unreadable.
std::optional<WallTime> parse_iso8601(const std::string& text);

}  // namespace fhirshift::cutover
