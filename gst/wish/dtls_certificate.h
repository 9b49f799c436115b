// The DTLS certificate webrtcbin's sessions use in this process.
#pragma once

#include <string>

namespace wish {

// A fresh self-signed ECDSA P-256 certificate and its private key, both in PEM, valid from a
// day ago for a year (browsers make the same kind for WebRTC; peers check only its
// fingerprint). Empty on failure.
std::string make_ecdsa_certificate_pem();

// Once per process, before the first DTLS element exists: GStreamer 1.22's DTLS elements then
// use an ECDSA P-256 certificate instead of the RSA-2048 one they make for the first webrtcbin
// of a process (about 160 ms of CPU, more on a loaded machine, on the way to the first offer;
// ECDSA takes about 1 ms). Those elements make their certificate in their instance init from
// GstDtlsCertificate's "pem" property left at its default value, a class that only exists
// from then on; so the default is supplied where GLib computes the default of a string
// property. Without effect (GStreamer keeps its own certificate) when a DTLS element was made
// before. Returns whether the ECDSA certificate was made and supplied.
bool prefer_ecdsa_dtls_certificate();

// webrtcbin 1.22 computes the a=fingerprint of its descriptions over every base64 line of its
// certificate's PEM, which for a supplied certificate holds the private key too: a wrong
// fingerprint, which webrtcbin peers do not check but browsers and other stacks do. Returns
// the description with that fingerprint replaced by the certificate's own (SHA-256 of its
// DER); unchanged when the ECDSA certificate is not in use.
std::string with_true_dtls_fingerprint(const std::string &sdp);

// The SHA-256 fingerprint ("AB:CD:...") of the first certificate of a PEM, and the one
// webrtcbin 1.22 computes from the same PEM (over all its base64 lines). Empty on failure.
std::string certificate_fingerprint(const std::string &pem);
std::string webrtcbin_fingerprint(const std::string &pem);

}  // namespace wish
