package main

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline/imageio"
)

// TestServeSameBytesAsCLI runs `grefine serve` in-process, refines the same image with
// the same seed through it and through `grefine refine`, and compares the PNG bytes;
// then it stops the server as SIGTERM would and expects exit status 0.
func TestServeSameBytesAsCLI(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	img, err := imageio.ReadFile(filepath.Join("..", "..", "testdata", "images", "sample.png"), imageio.DefaultLimits)
	require.NoError(t, err)
	var small bytes.Buffer
	require.NoError(t, imageio.EncodePNG(&small, imageio.ResizeBicubicPIL(img, 96, 64)))
	in := filepath.Join(dir, "small.png")
	require.NoError(t, os.WriteFile(in, small.Bytes(), 0o644))
	const prompt = "a red apple on a wooden table"

	_, errOut, code := run(t, "refine", "--image", in, "--prompt", prompt, "--out", dir, "--seed", "9", "--steps1", "2", "--steps2", "2", "--quiet")
	require.Equal(t, 0, code, errOut)
	cli, err := os.ReadFile(filepath.Join(dir, "refined.png"))
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, stop := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	var logs bytes.Buffer
	go func() {
		err := newApp(io.Discard, &logs).RunContext(ctx, []string{"grefine", "--models", tiny, "--hash-cache", "", "serve", "--addr", addr, "--drain-timeout", "10s"})
		if err != nil {
			exit <- exitCode(err)
			return
		}
		exit <- 0
	}()
	url := "http://" + addr
	waitReady(t, url, &logs)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "small.png")
	fw.Write(small.Bytes())
	for k, v := range map[string]string{"prompt": prompt, "seed": "9", "steps1": "2", "steps2": "2"} {
		mw.WriteField(k, v)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", url+"/v1/refine", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "image/png")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
	assert.Equal(t, cli, got, "the same seed gives the same PNG bytes through the CLI and the server")

	stop()
	select {
	case c := <-exit:
		assert.Equal(t, 0, c, "serve exits 0 after the drain: %s", logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	assert.Contains(t, logs.String(), `"message":"drained"`, "the log is JSON")
}

func TestServeUsageErrors(t *testing.T) {
	requireORT(t)
	tokens := filepath.Join(t.TempDir(), "none")
	require.NoError(t, os.WriteFile(tokens, []byte("# no token\n"), 0o600))
	for name, args := range map[string][]string{
		"argument":       {"serve", "extra"},
		"max body":       {"serve", "--max-body", "lots"},
		"half tls":       {"serve", "--tls-cert", "c.pem"},
		"empty tokens":   {"serve", "--auth-tokens", tokens},
		"missing tokens": {"serve", "--auth-tokens", tokens + ".missing"},
		"slots":          {"serve", "--slots", "0"},
		"queue":          {"serve", "--queue", "-1"},
		"drain":          {"serve", "--drain-timeout", "0s"},
	} {
		_, errOut, code := run(t, args...)
		assert.Equal(t, 2, code, "%s: %s", name, errOut)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"32MiB": 32 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "1048576": 1 << 20, "10 B": 10} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "0", "-1MiB", "lots", "1TB", strconv.Itoa(1<<30) + "GiB"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
}

func TestServeAddressInUse(t *testing.T) {
	requireORT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, errOut, code := run(t, "serve", "--addr", ln.Addr().String())
	assert.Equal(t, 69, code, "a listener that cannot open is unavailable (EX_UNAVAILABLE): %s", errOut)
	assert.Contains(t, errOut, "address already in use")
}
