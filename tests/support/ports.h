// Loopback ports for test servers.
#pragma once

namespace fhirshift::testing {

// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
int free_port();

}  // namespace fhirshift::testing
