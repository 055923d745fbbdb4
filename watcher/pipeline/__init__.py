"""The stages: fetch (with the SSRF guard), feeds, extract, judge, diff, rules, health."""
