-- Unit test of the write fence's classification (tools/haproxy/fhirshift_fence.lua), run by a plain
-- Lua 5.3 interpreter (ctest: fence_classify_test): which requests the fence holds during a cut-over.
-- Usage: lua5.3 fence_classify_test.lua <path of fhirshift_fence.lua>
local fence = dofile(assert(arg[1], "usage: lua5.3 fence_classify_test.lua <fhirshift_fence.lua>"))

local cases = {
  -- writes: held by the fence
  { "POST", "/", true, "batch/transaction Bundle" },
  { "POST", "/Patient", true, "create" },
  { "POST", "/Patient/", true, "create, trailing slash" },
  { "PUT", "/Patient/123", true, "update" },
  { "PUT", "/Patient?identifier=x", true, "conditional update" },
  { "PATCH", "/Patient/123", true, "patch" },
  { "DELETE", "/Patient/123", true, "delete" },
  { "DELETE", "/Patient?identifier=x", true, "conditional delete" },
  { "post", "/Observation", true, "method in lower case" },
  { "POST", "/Patient/$process-message", true, "an operation not known to be read-only" },
  { "POST", "/$closure", true, "$closure keeps state" },
  { "POST", "/Patient/_history", true, "not a search" },
  { "PUT", "/Patient/_search", true, "only POST _search is a search" },
  { "DELETE", "/Patient/_search", true, "only POST _search is a search" },
  { "MKCOL", "/x", true, "unknown methods are writes" },
  -- reads: never held
  { "GET", "/Patient/123", false, "read" },
  { "HEAD", "/Patient/123", false, "head" },
  { "OPTIONS", "/", false, "options" },
  { "GET", "/Patient/$everything", false, "GET operations are reads" },
  { "POST", "/Patient/_search", false, "search by POST" },
  { "POST", "/Patient/_search?name=x", false, "search by POST with a query" },
  { "POST", "/_search", false, "whole-system search by POST" },
  { "POST", "/fhir/r4/Observation/_search/", false, "search below a base path" },
  { "POST", "/Patient/1/$everything", false, "$everything" },
  { "POST", "/Patient/%24everything", false, "percent-encoded $" },
  { "POST", "/Patient/$validate", false, "$validate" },
  { "POST", "/ValueSet/$expand", false, "$expand" },
  { "POST", "/CodeSystem/$lookup", false, "$lookup" },
  { "POST", "/ValueSet/$validate-code", false, "$validate-code" },
  { "POST", "/ConceptMap/$translate", false, "$translate" },
  { "POST", "/CodeSystem/$subsumes", false, "$subsumes" },
  { "POST", "/Patient/1/$meta", false, "$meta" },
}

local failed = 0
for _, c in ipairs(cases) do
  local method, path, want, why = c[1], c[2], c[3], c[4]
  local got = fence.is_write(method, path)
  if got ~= want then
    failed = failed + 1
    print(string.format("FAIL %s %s: is_write=%s, expected %s (%s)", method, path, tostring(got),
      tostring(want), why))
  end
end
print(string.format("%d cases, %d failed", #cases, failed))
os.exit(failed == 0 and 0 or 1)
