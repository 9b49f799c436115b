// DTLS-SRTP of the viewer transport: two sessions (client and server) handshake over
// in-memory queues, derive each other's keys, and protect what the other unprotects; a
// certificate that is not the announced one fails; a lost flight comes again through the
// timer path; many handshakes in a row (run under scripts/sanitize.sh for leaks); our own
// AES-CM protect against libsrtp2's.
#include <gst/check/gstcheck.h>

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "dtls_certificate.h"
#include "protocol/rtcp.h"
#include "transport/dtls_srtp.h"

using namespace wish;
using State = DtlsSession::State;
using Role = DtlsSession::Role;

namespace {

const std::string &pem(int which) {
  static std::string pems[3] = {make_ecdsa_certificate_pem(), make_ecdsa_certificate_pem(), make_ecdsa_certificate_pem()};
  return pems[which];
}

std::shared_ptr<DtlsContext> context(int which, std::vector<SrtpProfile> profiles = {SrtpProfile::AeadAes128Gcm,
                                                                                     SrtpProfile::Aes128CmSha1_80}) {
  std::string error;
  auto ctx = DtlsContext::create(pem(which), profiles, &error);
  fail_unless(ctx != nullptr, "%s", error.c_str());
  return ctx;
}

// A client and a server joined by two queues; `drop` decides which datagrams are lost.
struct Link {
  std::deque<std::vector<uint8_t>> to_client, to_server;
  std::unique_ptr<DtlsSession> client, server;
  int sent_by_client = 0, sent_by_server = 0, timeouts = 0;
  std::function<bool(bool from_server, int index)> drop;

  Link(std::shared_ptr<DtlsContext> client_ctx, std::shared_ptr<DtlsContext> server_ctx, const std::string &client_expects,
       const std::string &server_expects) {
    client = std::make_unique<DtlsSession>(client_ctx, Role::Client, client_expects, [this](const uint8_t *p, size_t n) {
      int i = sent_by_client++;
      if (!(drop && drop(false, i))) to_server.emplace_back(p, p + n);
    });
    server = std::make_unique<DtlsSession>(server_ctx, Role::Server, server_expects, [this](const uint8_t *p, size_t n) {
      int i = sent_by_server++;
      if (!(drop && drop(true, i))) to_client.emplace_back(p, p + n);
    });
  }
  static bool over(State s) { return s == State::Failed || s == State::Closed; }
  bool finished() const {
    if (!to_client.empty() || !to_server.empty()) return false;
    return (client->state() == State::Connected && server->state() == State::Connected) || over(client->state()) ||
           over(server->state());
  }
  // Delivers what is in flight; when nothing is, waits for the earlier timer. Bounded.
  void run(int max_steps = 300) {
    fail_unless(server->start());
    client->start();
    for (int step = 0; step < max_steps && !finished(); step++) {
      if (!to_server.empty()) {
        std::vector<uint8_t> d = std::move(to_server.front());
        to_server.pop_front();
        server->receive(d.data(), d.size());
        continue;
      }
      if (!to_client.empty()) {
        std::vector<uint8_t> d = std::move(to_client.front());
        to_client.pop_front();
        client->receive(d.data(), d.size());
        continue;
      }
      int64_t tc = client->next_timeout_us(), ts = server->next_timeout_us();
      if (tc < 0 && ts < 0) break;  // nothing will ever happen again
      int64_t wait = tc < 0 ? ts : ts < 0 ? tc : std::min(tc, ts);
      fail_unless(wait <= 2000000, "a timer of %" G_GINT64_FORMAT " us", wait);
      if (wait > 0) g_usleep(static_cast<gulong>(wait));
      if (client->next_timeout_us() == 0) client->on_timeout(), timeouts++;
      if (server->next_timeout_us() == 0) server->on_timeout(), timeouts++;
    }
  }
};

std::vector<uint8_t> rtp_packet(uint16_t seq) {
  std::vector<uint8_t> p = {0x80, 96, 0, 0, 0, 0, 0x12, 0x34, 0xca, 0xfe, 0xba, 0xbe};
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  for (int i = 0; i < 1000; i++) p.push_back(static_cast<uint8_t>(i * 7));
  return p;
}

void check_handshake(SrtpProfile expected, std::vector<SrtpProfile> client_profiles) {
  auto cc = context(0, client_profiles), sc = context(1);
  std::string ours = cc->fingerprint(), true_fingerprint = certificate_fingerprint(pem(0));
  fail_unless_equals_string(ours.c_str(), true_fingerprint.c_str());
  Link link(cc, sc, "sha-256 " + sc->fingerprint(), cc->fingerprint());
  link.run();
  fail_unless(link.client->state() == State::Connected, "client: %s", link.client->error().c_str());
  fail_unless(link.server->state() == State::Connected, "server: %s", link.server->error().c_str());
  const SrtpKeys &c = link.client->keys(), &s = link.server->keys();
  fail_unless(c.profile == expected && s.profile == expected, "%s", srtp_profile_name(c.profile));
  size_t len = expected == SrtpProfile::AeadAes128Gcm ? 28 : 30;
  fail_unless_equals_int(c.local.size(), len);
  fail_unless(c.local == s.remote && c.remote == s.local);
  fail_unless(c.local != c.remote);
  fail_unless_equals_int(link.timeouts, 0);
}

// Handshake, then an SrtpSession on each side.
struct Keyed {
  std::unique_ptr<Link> link;
  SrtpSession client, server;
  explicit Keyed(std::vector<SrtpProfile> profiles) {
    auto cc = context(0, profiles), sc = context(1, profiles);
    link = std::make_unique<Link>(cc, sc, sc->fingerprint(), cc->fingerprint());
    link->run();
    fail_unless(link->client->state() == State::Connected && link->server->state() == State::Connected);
    std::string error;
    fail_unless(client.init(link->client->keys(), &error), "%s", error.c_str());
    fail_unless(server.init(link->server->keys(), &error), "%s", error.c_str());
  }
};

void check_srtp(SrtpProfile profile) {
  Keyed k({profile});
  // RTP from the server (our side in WHEP) to the client (the viewer).
  std::vector<uint8_t> plain = rtp_packet(1000), wire = plain;
  fail_unless(k.server.protect_rtp(&wire), "%s", k.server.last_error().c_str());
  fail_unless_equals_int(wire.size(), plain.size() + (profile == SrtpProfile::AeadAes128Gcm ? 16 : 10));
  fail_unless(std::equal(plain.begin(), plain.begin() + 12, wire.begin()));  // header in the clear
  fail_if(std::equal(plain.begin() + 12, plain.end(), wire.begin() + 12));   // payload not
  std::vector<uint8_t> replay = wire, tampered = wire;
  fail_unless(k.client.unprotect_rtp(&wire), "%s", k.client.last_error().c_str());
  fail_unless(wire == plain);
  fail_if(k.client.unprotect_rtp(&replay), "a replay was accepted");
  tampered[100] ^= 1;
  std::vector<uint8_t> next = rtp_packet(1001), next_wire = next;
  fail_unless(k.server.protect_rtp(&next_wire));
  next_wire[100] ^= 1;
  fail_if(k.client.unprotect_rtp(&next_wire), "a changed packet was accepted");
  // The same packet sent again (NACK without RTX) is allowed on our side.
  std::vector<uint8_t> again = plain;
  fail_unless(k.server.protect_rtp(&again), "%s", k.server.last_error().c_str());

  // RTCP both ways: our sender report to the viewer, its feedback to us.
  rtcp::SenderReport sr;
  sr.ssrc = 0xcafebabe;
  std::vector<uint8_t> sr_plain = rtcp::build_sender_compound(sr, "cname"), sr_wire = sr_plain;
  fail_unless(k.server.protect_rtcp(&sr_wire));
  fail_unless(k.client.unprotect_rtcp(&sr_wire), "%s", k.client.last_error().c_str());
  fail_unless(sr_wire == sr_plain);
  std::vector<uint8_t> fb;
  rtcp::append_receiver_report({0x1111, {}}, &fb);
  rtcp::append_pli({0x1111, 0xcafebabe}, &fb);
  std::vector<uint8_t> fb_wire = fb;
  fail_unless(k.client.protect_rtcp(&fb_wire));
  std::vector<uint8_t> copy = fb_wire;  // a failed unprotect may leave the packet changed (GCM)
  fail_if(k.client.unprotect_rtcp(&copy), "our own key unprotected the peer's");
  fail_unless(k.server.unprotect_rtcp(&fb_wire), "%s", k.server.last_error().c_str());
  rtcp::Compound c;
  fail_unless(rtcp::parse_compound(fb_wire.data(), fb_wire.size(), &c));
  fail_unless_equals_int(c.plis.size(), 1);
}

}  // namespace

GST_START_TEST(test_handshake_derives_matching_keys) {
  check_handshake(SrtpProfile::AeadAes128Gcm, {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80});
  // A peer with only the mandatory profile (RFC 8827 6.5).
  check_handshake(SrtpProfile::Aes128CmSha1_80, {SrtpProfile::Aes128CmSha1_80});
}
GST_END_TEST;

GST_START_TEST(test_srtp_both_ways) {
  check_srtp(SrtpProfile::Aes128CmSha1_80);
  check_srtp(SrtpProfile::AeadAes128Gcm);
}
GST_END_TEST;

GST_START_TEST(test_wrong_fingerprint_fails) {
  auto c0 = context(0), c1 = context(1), c2 = context(2);
  {
    // The client was told another certificate than the server has.
    Link link(c0, c1, c2->fingerprint(), c0->fingerprint());
    link.run();
    fail_unless(link.client->state() == State::Failed);
    fail_unless(link.client->error().find("fingerprint") != std::string::npos, "%s", link.client->error().c_str());
    fail_unless(link.client->error().find(c1->fingerprint()) != std::string::npos);
    fail_unless(link.server->state() == State::Failed, "the client's alert did not end the server");
    fail_unless(link.client->keys().local.empty() && link.server->keys().local.empty());
  }
  {
    // The server's side of it.
    Link link(c0, c1, c1->fingerprint(), c2->fingerprint());
    link.run();
    fail_unless(link.server->state() == State::Failed);
    fail_unless(link.server->error().find("fingerprint") != std::string::npos, "%s", link.server->error().c_str());
    fail_if(link.client->state() == State::Connected);
  }
}
GST_END_TEST;

GST_START_TEST(test_lost_flight_recovered_by_timer) {
  auto cc = context(0), sc = context(1);
  {
    // The server's first flight is lost: the client's timer sends its hello again.
    Link link(cc, sc, sc->fingerprint(), cc->fingerprint());
    link.client->set_initial_timeout_ms(50);
    link.server->set_initial_timeout_ms(50);
    bool dropped = false;
    link.drop = [&](bool from_server, int) {
      if (!from_server || dropped) return false;
      // Everything of the first flight: it goes out in one call chain.
      if (link.sent_by_server > 0 && !link.to_client.empty()) return false;
      return true;
    };
    link.client->start();
    fail_unless(link.client->next_timeout_us() > 0 && link.client->next_timeout_us() <= 50000);
    link.server->start();
    std::vector<uint8_t> hello = std::move(link.to_server.front());
    link.to_server.pop_front();
    link.server->receive(hello.data(), hello.size());
    fail_unless(link.sent_by_server > 0 && link.to_client.empty());
    dropped = true;
    auto t0 = std::chrono::steady_clock::now();
    link.run();
    fail_unless(link.client->state() == State::Connected, "%s", link.client->error().c_str());
    fail_unless(link.server->state() == State::Connected, "%s", link.server->error().c_str());
    fail_unless(link.timeouts >= 1);
    fail_unless(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(30));
    fail_unless(link.client->keys().local == link.server->keys().remote);
  }
  {
    // The server's last flight (its Finished) is lost: the server is connected, the client
    // sends its own last flight again, and the connected server answers it once more.
    Link link(cc, sc, sc->fingerprint(), cc->fingerprint());
    link.client->set_initial_timeout_ms(50);
    link.server->start();
    link.client->start();
    // Deliver until the server is connected; what it sent in that last step is lost.
    for (int steps = 0; link.server->state() != State::Connected && steps < 50; steps++) {
      if (!link.to_server.empty()) {
        auto d = std::move(link.to_server.front());
        link.to_server.pop_front();
        size_t before = link.to_client.size();
        link.server->receive(d.data(), d.size());
        if (link.server->state() == State::Connected) {
          fail_unless(link.to_client.size() > before, "the server sent no last flight");
          link.to_client.resize(before);
        }
      } else if (!link.to_client.empty()) {
        auto d = std::move(link.to_client.front());
        link.to_client.pop_front();
        link.client->receive(d.data(), d.size());
      }
    }
    fail_unless(link.server->state() == State::Connected);
    fail_unless(link.to_client.empty());
    fail_unless(link.client->state() == State::Handshaking);
    link.run();
    fail_unless(link.client->state() == State::Connected, "%s", link.client->error().c_str());
    fail_unless(link.timeouts >= 1);
    fail_unless(link.client->keys().local == link.server->keys().remote);
  }
}
GST_END_TEST;

GST_START_TEST(test_many_handshakes) {
  auto cc = context(0), sc = context(1);
  auto t0 = std::chrono::steady_clock::now();
  const int n = 1000;
  for (int i = 0; i < n; i++) {
    Link link(cc, sc, sc->fingerprint(), cc->fingerprint());
    link.run();
    fail_unless(link.client->state() == State::Connected && link.server->state() == State::Connected, "%d: %s %s", i,
                link.client->error().c_str(), link.server->error().c_str());
    if (i % 100 == 0) {
      SrtpSession a, b;
      std::string error;
      fail_unless(a.init(link.client->keys(), &error) && b.init(link.server->keys(), &error), "%s", error.c_str());
    }
    link.client->close();
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  GST_INFO("%d handshakes (both sides) in %.0f ms: %.2f ms each", n, ms, ms / n);
  g_print("%d DTLS handshakes (both sides in this thread) in %.0f ms: %.2f ms each\n", n, ms, ms / n);
}
GST_END_TEST;

GST_START_TEST(test_garbage_and_misuse) {
  auto sc = context(1);
  DtlsSession server(sc, Role::Server, "00:11", [](const uint8_t *, size_t) {});
  const uint8_t junk[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2};  // a cut record
  server.receive(junk, sizeof junk);
  fail_if(server.state() == State::Connected);
  server.receive(junk, 0);
  fail_if(server.state() == State::Connected);
  std::string error;
  fail_unless(DtlsContext::create("not a pem", {SrtpProfile::Aes128CmSha1_80}, &error) == nullptr);
  fail_if(error.empty());
  fail_unless(DtlsContext::create(pem(0), {}, &error) == nullptr);
  SrtpSession srtp;
  std::vector<uint8_t> p = rtp_packet(1);
  fail_if(srtp.protect_rtp(&p), "protected without keys");
  fail_unless(p == rtp_packet(1));
  SrtpKeys wrong{SrtpProfile::Aes128CmSha1_80, std::vector<uint8_t>(28), std::vector<uint8_t>(28)};
  fail_if(srtp.init(wrong, &error));
}
GST_END_TEST;

// Our AES-CM protect (srtp_cm.h) writes what libsrtp2 writes, byte for byte, and libsrtp2
// unprotects it: SSRCs of their own, sequence numbers that wrap (twice), that start high, a
// packet sent again, one far behind, CSRCs, a header extension, padding, an empty payload;
// and sender reports (SRTCP), which our unprotect takes back, refusing replays and changes.
GST_START_TEST(test_own_aes_cm_matches_libsrtp) {
  std::vector<uint8_t> local(30), remote(30);
  for (size_t i = 0; i < local.size(); i++) {
    local[i] = static_cast<uint8_t>(i * 37 + 11);
    remote[i] = static_cast<uint8_t>(i * 53 + 5);
  }
  SrtpKeys keys{SrtpProfile::Aes128CmSha1_80, local, remote};
  SrtpKeys peer_keys{SrtpProfile::Aes128CmSha1_80, remote, local};
  SrtpSession ours, libsrtp, peer, peer_libsrtp;
  std::string error;
  fail_unless(ours.init(keys, &error, true), "%s", error.c_str());
  fail_unless(libsrtp.init(keys, &error, false), "%s", error.c_str());
  fail_unless(peer.init(peer_keys, &error), "%s", error.c_str());
  fail_unless(peer_libsrtp.init(peer_keys, &error, false), "%s", error.c_str());
  auto packet = [](uint32_t ssrc, uint16_t seq, int kind, size_t payload) {
    std::vector<uint8_t> p = {0x80, 96, uint8_t(seq >> 8), uint8_t(seq), 0, 1, 2, 3,
                              uint8_t(ssrc >> 24), uint8_t(ssrc >> 16), uint8_t(ssrc >> 8), uint8_t(ssrc)};
    if (kind == 1) {  // two CSRCs
      p[0] |= 2;
      for (int i = 0; i < 8; i++) p.push_back(uint8_t(0xc0 + i));
    } else if (kind == 2) {  // a one-byte header extension of two words
      p[0] |= 0x10;
      for (uint8_t b : {0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0x00, 0x00, 0x00}) p.push_back(b);
    }
    for (size_t i = 0; i < payload; i++) p.push_back(static_cast<uint8_t>(seq * 31 + i));
    if (kind == 3) {  // four bytes of padding
      p[0] |= 0x20;
      p.insert(p.end(), {0, 0, 0, 4});
    }
    return p;
  };
  struct Step {
    uint32_t ssrc;
    uint16_t seq;
  };
  std::vector<Step> steps;
  for (int i = 0; i < 70000; i += 7) steps.push_back({0x11111111, static_cast<uint16_t>(100 + i)});  // wraps once
  for (int i = 0; i < 140000; i += 13) steps.push_back({0x22222222, static_cast<uint16_t>(65000 + i)});  // twice
  steps.push_back({0x11111111, static_cast<uint16_t>(100 + 69993)});                // the last one again
  steps.push_back({0x11111111, static_cast<uint16_t>(100 + 69993 - 300)});          // a late retransmission
  steps.push_back({0x33333333, 5});
  int n = 0;
  for (const Step &s : steps) {
    int kind = n % 5;
    size_t payload = kind == 4 ? 0 : 1 + (n * 97) % 1200;
    std::vector<uint8_t> plain = packet(s.ssrc, s.seq, kind, payload), a = plain, b = plain;
    fail_unless(ours.protect_rtp(&a), "ours, packet %d: %s", n, ours.last_error().c_str());
    fail_unless(libsrtp.protect_rtp(&b), "libsrtp2, packet %d: %s", n, libsrtp.last_error().c_str());
    fail_unless(a == b, "packet %d (ssrc %08x seq %u kind %d): ours differs from libsrtp2's", n, s.ssrc, s.seq, kind);
    // The last two are repeats: libsrtp2's receiver would call them replays.
    if (n < static_cast<int>(steps.size()) - 3) {
      fail_unless(peer.unprotect_rtp(&a), "packet %d not unprotected: %s", n, peer.last_error().c_str());
      fail_unless(a == plain, "packet %d unprotected to other bytes", n);
    }
    n++;
  }
  // RTCP: sender reports of two SSRCs, interleaved, and a compound of two packets.
  for (int i = 0; i < 300; i++) {
    rtcp::SenderReport sr;
    sr.ssrc = i % 3 ? 0x11111111 : 0x22222222;
    sr.ntp_time = 0x0102030405060708ull + i;
    sr.rtp_time = 1000u * i;
    sr.packet_count = i;
    sr.octet_count = 1200u * i;
    std::vector<uint8_t> plain = rtcp::build_sender_compound(sr, i % 2 ? "wish" : "a longer cname"), a = plain, b = plain;
    fail_unless(ours.protect_rtcp(&a), "ours, RTCP %d: %s", i, ours.last_error().c_str());
    fail_unless(libsrtp.protect_rtcp(&b), "libsrtp2, RTCP %d: %s", i, libsrtp.last_error().c_str());
    fail_unless(a == b, "RTCP %d: ours differs from libsrtp2's", i);
    // Unprotected by ours (the peer's SrtpCmProtector) and by libsrtp2's; a replay and a
    // changed byte are refused.
    std::vector<uint8_t> again = a, changed = a;
    changed[8 + i % (changed.size() - 8)] ^= 0x01;
    fail_if(peer.unprotect_rtcp(&changed), "RTCP %d: a changed byte passed", i);
    fail_unless(peer.unprotect_rtcp(&a) && a == plain, "RTCP %d not unprotected to its bytes", i);
    fail_if(peer.unprotect_rtcp(&again), "RTCP %d: a replay passed", i);
    fail_unless(peer_libsrtp.unprotect_rtcp(&b) && b == plain, "RTCP %d: libsrtp2 did not unprotect it", i);
  }
  // Not RTP, or no room: refused, untouched.
  std::vector<uint8_t> short_one = {0x80, 96, 0, 1};
  fail_if(ours.protect_rtp(&short_one));
  fail_unless(short_one.size() == 4);
  SrtpCmProtector cm;
  fail_if(cm.init(std::vector<uint8_t>(28)), "a key of the wrong length");
  uint8_t buf[40] = {0x80, 96};
  size_t len = 12;
  fail_if(cm.protect_rtp(buf, &len, sizeof buf), "protected before init");
  fail_unless(cm.init(local));
  fail_if(cm.protect_rtp(buf, &len, 12 + SrtpCmProtector::kTagLen - 1), "no room for the tag");
  fail_unless(cm.protect_rtp(buf, &len, sizeof buf) && len == 12 + SrtpCmProtector::kTagLen);
}
GST_END_TEST;

static Suite *dtls_srtp_suite(void) {
  Suite *s = suite_create("dtls-srtp");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 540);  // 1000 handshakes take about 150 s under ASan on a busy machine
  tcase_add_test(tc, test_handshake_derives_matching_keys);
  tcase_add_test(tc, test_srtp_both_ways);
  tcase_add_test(tc, test_own_aes_cm_matches_libsrtp);
  tcase_add_test(tc, test_wrong_fingerprint_fails);
  tcase_add_test(tc, test_lost_flight_recovered_by_timer);
  tcase_add_test(tc, test_many_handshakes);
  tcase_add_test(tc, test_garbage_and_misuse);
  return s;
}

GST_CHECK_MAIN(dtls_srtp);
