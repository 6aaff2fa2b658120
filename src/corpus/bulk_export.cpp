#include "corpus/bulk_export.h"

#include <zlib.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

namespace fhirshift::corpus {
namespace {

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A UUID-shaped id, as Synthea gives its resources.
std::string uuid(uint64_t& state) {
  uint64_t a = splitmix(state), b = splitmix(state);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>(a >> 16) & 0xffff, static_cast<unsigned>(a) & 0xfff,
                0x8000 | (static_cast<unsigned>(b >> 48) & 0x3fff),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

// Words of a clinical note, for narratives and the notes of DocumentReferences.
std::string prose(size_t bytes, uint64_t seed) {
  static const char* const kWords[] = {"patient", "presents", "with", "history", "of", "hypertension", "and",
                                       "chronic", "sinusitis", "reports", "no", "fever", "medication",
                                       "reconciliation", "performed", "assessment", "plan", "follow-up", "in",
                                       "two", "weeks", "vital", "signs", "stable", "allergies", "reviewed"};
  std::string out;
  out.reserve(bytes + 16);
  while (out.size() < bytes) {
    if (!out.empty()) out += ' ';
    out += kWords[splitmix(seed) % std::size(kWords)];
  }
  out.resize(bytes);
  return out;
}

std::string base64(std::string_view in) {
  static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// Replaces the first attachment's content (inline data or url) by a base64 note that brings the
// record to about `target` bytes.
void put_note(std::string& body, size_t target, uint64_t seed) {
  size_t at = body.find("\"data\":\"");
  size_t end = at == std::string::npos ? std::string::npos : body.find('"', at + 8);
  if (at == std::string::npos) {
    at = body.find("\"url\":\"https://docs.example.org/binary/");
    if (at == std::string::npos) return;
    end = body.find('"', at + 7);
  }
  if (end == std::string::npos) return;
  size_t rest = body.size() - (end + 1 - at);
  size_t encoded = target > rest + 10 ? target - rest - 10 : 4;
  std::string data = "\"data\":\"" + base64(prose(encoded / 4 * 3, seed)) + "\"";
  body.replace(at, end + 1 - at, data);
}

// Lengthens the record's narrative (or gives it one) so that it has about `target` bytes.
void pad_narrative(std::string& body, const std::string& type, const std::string& id, size_t target,
                   uint64_t seed) {
  if (body.size() >= target) return;
  const std::string own = "<p>" + type + " " + id + "</p>";
  if (size_t at = body.find(own); at != std::string::npos) {
    body.insert(at + own.size() - 4, " " + prose(target - body.size() - 1, seed));
    return;
  }
  const std::string head = "{\"resourceType\":\"" + type + "\",\"id\":\"" + id + "\"";
  if (body.compare(0, head.size(), head) != 0) return;
  std::string text = ",\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><p>" +
                     type + " " + id + " ";
  const std::string tail = "</p></div>\"}";
  size_t fixed = body.size() + text.size() + tail.size();
  text += prose(target > fixed ? target - fixed : 1, seed) + tail;
  body.insert(head.size(), text);
}

// One output file per type, plain or gzip.
class Output {
 public:
  Output(const std::filesystem::path& path, bool gzip) : path_(path) {
    if (gzip) gz_ = gzopen(path.c_str(), "wb6");
    else plain_ = std::fopen(path.c_str(), "wb");
    if (!gz_ && !plain_) throw std::runtime_error("cannot create " + path.string());
  }
  ~Output() {
    if (gz_) gzclose(gz_);
    if (plain_) std::fclose(plain_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  void write(const std::string& line) {
    bool ok = gz_ ? gzwrite(gz_, line.data(), static_cast<unsigned>(line.size())) == static_cast<int>(line.size())
                  : std::fwrite(line.data(), 1, line.size(), plain_) == line.size();
    if (!ok) throw std::runtime_error("cannot write " + path_.string() + " (disk full?)");
  }
  void close() {
    int rc = gz_ ? gzclose(gz_) : std::fclose(plain_);
    gz_ = nullptr;
    plain_ = nullptr;
    if (rc != 0) throw std::runtime_error("cannot write " + path_.string() + " (disk full?)");
  }

 private:
  std::filesystem::path path_;
  gzFile gz_ = nullptr;
  std::FILE* plain_ = nullptr;
};

}  // namespace

const std::vector<ExportType>& export_types() {
  static const std::vector<ExportType> kTypes = {
      {"Observation", 39, 500, 1200},         {"Encounter", 9, 500, 1500},
      {"Procedure", 9, 500, 1500},            {"DocumentReference", 9, 3000, 3600},
      {"DiagnosticReport", 7, 800, 2000},     {"Claim", 7, 1000, 2500},
      {"MedicationRequest", 6, 500, 1500},    {"Condition", 5, 500, 1500},
      {"ExplanationOfBenefit", 4, 2000, 5000}, {"Immunization", 2, 500, 1500},
      {"Patient", 1, 2500, 4000},             {"CarePlan", 1, 800, 2000},
      {"AllergyIntolerance", 1, 500, 1000},
  };
  return kTypes;
}

std::string export_record(Generator& generator, const ExportType& type, const std::string& id, uint64_t draw) {
  const size_t target = static_cast<size_t>(type.min_bytes) +
                        draw % static_cast<uint64_t>(type.max_bytes - type.min_bytes + 1);
  std::string body;
  for (int attempt = 0; attempt < 20; ++attempt) {
    body = generator.resource(type.name, id);
    if (std::string_view(type.name) == "DocumentReference") put_note(body, target, draw);
    if (body.size() <= static_cast<size_t>(type.max_bytes)) break;  // else another draw of the generator
  }
  pad_narrative(body, type.name, id, target, draw);
  return body;
}

ExportReport write_bulk_export(const std::filesystem::path& dir, const ExportOptions& options) {
  std::filesystem::create_directories(dir);
  const auto& types = export_types();
  std::vector<std::unique_ptr<Output>> out;
  ExportReport report;
  for (const auto& t : types) {
    report.files.push_back(dir / (std::string(t.name) + (options.gzip ? ".ndjson.gz" : ".ndjson")));
    out.push_back(std::make_unique<Output>(report.files.back(), options.gzip));
  }
  int total_share = 0;
  for (const auto& t : types) total_share += t.share;
  Generator generator(options.seed);
  uint64_t state = options.seed * 0x2545f4914f6cdd1dULL + 1;
  for (int64_t i = 0; i < options.resources; ++i) {
    int x = static_cast<int>(splitmix(state) % static_cast<uint64_t>(total_share));
    size_t k = 0;
    while (x >= types[k].share) x -= types[k++].share;
    std::string line = export_record(generator, types[k], uuid(state), splitmix(state)) + "\n";
    out[k]->write(line);
    report.resources++;
    report.bytes += static_cast<int64_t>(line.size());
    report.resources_by_type[types[k].name]++;
    report.bytes_by_type[types[k].name] += static_cast<int64_t>(line.size());
  }
  for (auto& o : out) o->close();
  return report;
}

}  // namespace fhirshift::corpus
