// Package netsrc holds the socket sources: tcp (netcat-style, one event per line, with
// optional "OK" acknowledgements) and http (POST of JSON lines, or Flume's JSONHandler
// array; 503 with Retry-After when the channel is full).
package netsrc
