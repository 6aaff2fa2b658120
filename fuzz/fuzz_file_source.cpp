// libFuzzer target: the reader of `migrate --sourceType Filesystem` (ndjson, gzip-compressed
// ndjson, Bundles and single resources).
//
// Input: one byte naming the kind of file, then its content: 'n' an .ndjson file, 'z' an
// .ndjson.gz file (the content is gzip-compressed here first), 'j' a .json file; anything else: no
// file, the rest is one resource's text given to read_resource() (the check of every line and
// Bundle entry), at full speed: the file reader's 256 KiB buffers make a run through a file about a
// hundred times slower under ASan. Every
// entry read must be a resource or carry its reason (FileSourceError only for a damaged gzip
// stream, i.e. a broken source). Resuming from any position (what the recovery journal does after
// a crash) must continue with exactly the entry that followed it.
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "migrate/file_source.h"

namespace {

std::filesystem::path work_dir;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_file_source: %s\n", what.c_str());
  std::abort();
}

void write_file(const std::filesystem::path& path, const uint8_t* data, size_t size, bool gzip) {
  if (gzip) {
    gzFile out = gzopen(path.c_str(), "wb");
    if (!out) fail("cannot write " + path.string());
    if (size > 0 && gzwrite(out, data, static_cast<unsigned>(size)) <= 0) fail("gzwrite failed");
    gzclose(out);
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) fail("cannot write " + path.string());
}

struct Seen {
  int64_t ordinal, line;
  std::string reason, json;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // tmpfs when there is one: the target writes a file per input.
  std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
  std::string tmpl = base + "/fhirshift-fuzz-files.XXXXXX";
  if (!mkdtemp(tmpl.data())) fail("mkdtemp failed in " + base);
  work_dir = tmpl;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(work_dir, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fhirshift::migrate;
  if (size == 0) return 0;
  const char kind = static_cast<char>(data[0]);
  if (kind != 'n' && kind != 'z' && kind != 'j') {
    FileEntry e;
    e.file = "input.ndjson";
    e.ordinal = e.line = 1;
    read_resource(e, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    if (e.ok() && (e.json.empty() || e.type.empty() || e.id.empty())) fail("a resource without its JSON, type or id");
    if (!e.ok() && e.problem.empty()) fail("a reason without a message");
    return 0;
  }
  const char* name = kind == 'n' ? "input.ndjson" : kind == 'z' ? "input.ndjson.gz" : "input.json";
  std::error_code ec;
  for (const char* stale : {"input.ndjson", "input.ndjson.gz", "input.json"})
    std::filesystem::remove(work_dir / stale, ec);
  const auto path = work_dir / name;
  write_file(path, data + 1, size - 1, kind == 'z');

  std::vector<Seen> seen;
  std::vector<FilePosition> positions;
  try {
    FileSource source(path);
    for (;;) {
      positions.push_back(source.position());
      auto e = source.next();
      if (!e) break;
      if (e->ok() && (e->json.empty() || e->type.empty() || e->id.empty()))
        fail("a resource without its JSON, type or id at " + e->where());
      if (!e->ok() && e->problem.empty()) fail("a reason without a message at " + e->where());
      if (e->ordinal != static_cast<int64_t>(seen.size()) + 1 || e->line < 1)
        fail("entry " + std::to_string(seen.size() + 1) + " is numbered " + e->where());
      if (source.bytes_read() < 0 || source.bytes_read() > source.bytes_total())
        fail("bytes read outside 0.." + std::to_string(source.bytes_total()));
      seen.push_back({e->ordinal, e->line, e->reason, e->json});
    }
  } catch (const FileSourceError&) {
    // A damaged gzip stream (or a plain file that starts like one): a broken source, by design.
    return 0;
  }
  // Resume from one position (chosen by the input's size, so that it is reproducible).
  if (!seen.empty()) {
    size_t k = size % seen.size();
    FileSource again(path);
    again.seek(positions[k]);
    auto e = again.next();
    if (!e) fail("resuming at entry " + std::to_string(k) + " found nothing");
    if (e->ordinal != seen[k].ordinal || e->line != seen[k].line || e->reason != seen[k].reason ||
        e->json != seen[k].json)
      fail("resuming at entry " + std::to_string(k) + " gave " + e->where() + ", not the entry read before");
  }
  return 0;
}
