// common/redact.hpp: secrets masked in whole texts and in streams cut at every position.
#include "common/redact.hpp"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(RedactTest, EveryOccurrenceIsMasked) {
  EXPECT_EQ(Redactor::redact("key=hunter22 again hunter22.", {"hunter22"}), "key=*** again ***.");
  EXPECT_EQ(Redactor::redact("nothing here", {"hunter22"}), "nothing here");
  EXPECT_EQ(Redactor::redact("", {"hunter22"}), "");
}

TEST(RedactTest, TheLongestSecretWinsWhereTwoOverlap) {
  EXPECT_EQ(Redactor::redact("abcdefgh", {"abcde", "abcdefgh"}), "***");
  EXPECT_EQ(Redactor::redact("abcdeXgh", {"abcde", "abcdefgh"}), "***Xgh");
}

TEST(RedactTest, ShortValuesAreNotMasked) {
  EXPECT_EQ(Redactor::redact("on and off", {"on", "off", ""}), "on and off");
  EXPECT_EQ(Redactor::redact("12345 1234", {"12345", "1234"}), "*** 1234");
}

TEST(RedactTest, ASecretCutAcrossPiecesIsStillMaskedAtEveryCut) {
  const std::string text = "start s3cr3t-value mid s3cr3t-valu end s3cr3t-value";
  const std::string want = "start *** mid s3cr3t-valu end ***";
  for (size_t cut1 = 0; cut1 <= text.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= text.size(); cut2 += 3) {
      Redactor r({"s3cr3t-value"});
      std::string out = r.feed(text.substr(0, cut1));
      out += r.feed(text.substr(cut1, cut2 - cut1));
      out += r.feed(text.substr(cut2));
      out += r.finish();
      ASSERT_EQ(out, want) << "cuts at " << cut1 << ", " << cut2;
    }
  }
}

TEST(RedactTest, AHeldBackPrefixIsWrittenWhenItTurnsOutNotToBeASecret) {
  Redactor r({"password1"});
  EXPECT_EQ(r.feed("my passw"), "my ");  // could still become the secret
  EXPECT_EQ(r.feed("ord2"), "password2");
  EXPECT_EQ(r.feed(" passw"), " ");
  EXPECT_EQ(r.finish(), "passw");  // the stream ended: it was not the secret
}

TEST(RedactTest, AMaskedUrlKeepsSchemeHostAndPortAndHidesCredentialPathAndQuery) {
  EXPECT_EQ(masked_url("https://hooks.slack.com/services/T0/B0/XXXXsecret"),
            "https://hooks.slack.com/***");
  EXPECT_EQ(masked_url("http://127.0.0.1:9000/hook?token=abc"), "http://127.0.0.1:9000/***");
  EXPECT_EQ(masked_url("https://user:pa55@example.com:8443"), "https://***@example.com:8443");
  EXPECT_EQ(masked_url("https://example.com?key=1"), "https://example.com/***");
  EXPECT_EQ(masked_url("https://example.com/"), "https://example.com");
  EXPECT_EQ(masked_url("not a url with a secret"), "***");
}

}  // namespace
}  // namespace drover
