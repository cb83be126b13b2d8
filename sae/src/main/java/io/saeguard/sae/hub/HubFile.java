package io.saeguard.sae.hub;

import java.util.Optional;

/**
 * A file of a hub repository as the tree API lists it: its path in the repository, its size, its git blob id
 * ({@code oid}: SHA-1 of {@code "blob <size>\0" + content}) and, for a file stored with Git LFS, the SHA-256 of its
 * content ({@code lfs.oid}). The download is checked against the SHA-256 where there is one, else the blob id.
 */
record HubFile(String path, long size, String blobId, Optional<String> lfsSha256) {
}
