/* SPDX-License-Identifier: MIT */
/*
 * The agent's version: what --version, the control socket and /metrics
 * report, and what the OTLP exporters send as their User-Agent. Its own
 * header (including nothing) so that the exporters need no core header
 * for it.
 */
#ifndef SPANRING_AGENT_VERSION_H
#define SPANRING_AGENT_VERSION_H

#define AGENT_VERSION "0.1.0"

#endif
