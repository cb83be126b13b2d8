/**
 * SAEs by name (docs/sae-sources.md): SAELens's release table ({@link io.saeguard.sae.hub.SaeReleases}, shipped as
 * data with its licence), a small Hugging Face Hub client over {@code java.net.http} and a local cache
 * ({@link io.saeguard.sae.hub.SaePuller}) that turns {@code (release, sae_id)} into a directory
 * {@link io.saeguard.sae.format.SaeLoader} loads.
 */
package io.saeguard.sae.hub;
