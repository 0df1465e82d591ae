package libvirt

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readISORoot reads the volume label and the root directory's files back
// from an image made by buildISO, following the descriptors as a reader
// would.
func readISORoot(t *testing.T, img []byte) (string, map[string]string) {
	t.Helper()
	pvd := img[16*isoSector:]
	require.Equal(t, byte(1), pvd[0])
	require.Equal(t, "CD001", string(pvd[1:6]))
	require.Equal(t, byte(255), img[17*isoSector], "terminator follows")
	require.Equal(t, uint32(len(img)/isoSector), binary.LittleEndian.Uint32(pvd[80:84]))
	require.Equal(t, binary.LittleEndian.Uint32(pvd[80:84]), binary.BigEndian.Uint32(pvd[84:88]))
	label := strings.TrimRight(string(pvd[40:72]), " ")
	rootLBA := binary.LittleEndian.Uint32(pvd[156+2:])
	rootLen := binary.LittleEndian.Uint32(pvd[156+10:])
	dir := img[rootLBA*isoSector : rootLBA*isoSector+rootLen]
	files := map[string]string{}
	for off := 0; off < len(dir) && dir[off] != 0; off += int(dir[off]) {
		r := dir[off:]
		name := string(r[33 : 33+int(r[32])])
		if r[25]&2 != 0 {
			continue
		}
		ext := binary.LittleEndian.Uint32(r[2:])
		size := binary.BigEndian.Uint32(r[14:])
		files[name] = string(img[ext*isoSector : ext*isoSector+size])
	}
	return label, files
}

func TestBuildISO(t *testing.T) {
	user := "#cloud-config\nhostname: web-1\n" + strings.Repeat("# padding\n", 300) // spans two sectors
	img, err := buildISO("cidata", []isoFile{{Name: "meta-data", Data: []byte("instance-id: x\n")}, {Name: "user-data", Data: []byte(user)}})
	require.NoError(t, err)
	require.Zero(t, len(img)%isoSector)
	label, files := readISORoot(t, img)
	require.Equal(t, "cidata", label)
	require.Equal(t, map[string]string{"META-DATA;1": "instance-id: x\n", "USER-DATA;1": user}, files)

	if blkid, err := exec.LookPath("blkid"); err == nil {
		p := filepath.Join(t.TempDir(), "seed.iso")
		require.NoError(t, os.WriteFile(p, img, 0o644))
		out, err := exec.Command(blkid, "-p", "-o", "export", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "TYPE=iso9660")
		require.Contains(t, string(out), "LABEL=cidata")
	}
}

func TestBuildISORejects(t *testing.T) {
	f := func(label string, files []isoFile, want string) {
		t.Helper()
		_, err := buildISO(label, files)
		require.ErrorContains(t, err, want)
	}
	ok := []isoFile{{Name: "a", Data: []byte("x")}}
	f("", ok, "volume label")
	f(strings.Repeat("x", 33), ok, "volume label")
	f("cidata", nil, "1 to 32 files")
	f("cidata", []isoFile{{Name: "a/b"}}, "file name")
	f("cidata", []isoFile{{Name: "a"}, {Name: "A"}}, "duplicate")
	f("cidata", []isoFile{{Name: "big", Data: bytes.Repeat([]byte{1}, maxISOBytes+1)}}, "more than")
}
