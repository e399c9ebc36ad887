"""virtio-9p against a hostile 9P client (tests/guests/virtio9p): walks out
by "..", through symlinks, names with '/', creating over and hard-linking a
symlink that points out, broken framing, a reply buffer too small for any
reply, a 4 GiB read into 16 bytes; each answered with the right error, khyve
serving to the end, and nothing outside the share read or changed."""
import os

from conftest import passed, run_guest


def test_hostile_9p_client_stays_in_the_share(tmp_path):
    share = tmp_path / "share"
    (share / "dir").mkdir(parents=True)
    (share / "file").write_text("hello from the host\n")
    os.symlink("../secret", share / "out")
    os.symlink("..", share / "up")
    (tmp_path / "secret").write_text("host secret\n")
    before = sorted(os.listdir(share))
    r = passed(run_guest("virtio9p", "-s", "0,hostbridge", "-s", f"4,virtio-9p,hostile={share}",
                         "-s", "31,lpc"))
    assert "P9: tag=hostile" in r.out, r
    for case in ("walk-dotdot", "walk-through-symlink", "open-symlink err 40", "walk-slash",
                 "walk-17-names", "walk-long-name err 36", "create-over-symlink err 40",
                 "link-symlink err 1", "rename-to-dotdot", "mkdir-slash", "size-too-big err 71",
                 "trailing-bytes err 71", "unknown-type err 95", "size-too-small err 71",
                 "tiny-reply-buffer used 0", "read-4g-into-16 ok 5", "write-2^63 err 22",
                 "file says hello from the host"):
        assert f"P9: {case}" in r.out, (case, r)
    assert "host secret" not in r.out, r
    assert (tmp_path / "secret").read_text() == "host secret\n"
    assert sorted(os.listdir(tmp_path)) == ["secret", "share"]
    assert sorted(os.listdir(share)) == before
    assert (share / "file").read_text() == "hello from the host\n"
