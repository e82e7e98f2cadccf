package storage

import "fmt"

// EnforceRetention deletes closed segments that are past retention.ms (by their newest
// record timestamp), that push the log over retention.bytes (oldest first), or that lie
// wholly below the log start offset. The active segment is never deleted. It also
// forgets idempotent producers idle for longer than ProducerIDExpirationMS.
func (l *Log) EnforceRetention() (deletedSegments int, err error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	o := &l.opts
	now := l.now()
	for len(l.segs) > 1 {
		s := l.segs[0]
		expired := o.RetentionMS >= 0 && now-s.largestTimestamp() > o.RetentionMS
		tooBig := o.RetentionBytes >= 0 && l.size.Load()-s.size >= o.RetentionBytes
		below := l.segs[1].base <= l.startOffset.Load()
		if !expired && !tooBig && !below {
			break
		}
		if err := l.deleteOldest(); err != nil {
			return deletedSegments, err
		}
		deletedSegments++
	}
	if o.ProducerIDExpirationMS > 0 {
		l.producer.expire(now - o.ProducerIDExpirationMS)
	}
	return deletedSegments, nil
}

// deleteOldest removes the first segment; the log start offset moves to the next one.
// Called with writeMu held and at least two segments.
func (l *Log) deleteOldest() error {
	l.mu.Lock()
	s := l.segs[0]
	l.segs = l.segs[1:]
	if b := l.segs[0].base; b > l.startOffset.Load() {
		l.startOffset.Store(b)
	}
	l.size.Add(-s.size)
	l.mu.Unlock()
	l.opts.Logger.Info("deleted segment", "segment", s.path(".log"), "bytes", s.size, "log_start_offset", l.startOffset.Load())
	return s.remove()
}

// DeleteRecordsBefore moves the log start offset to offset (-1: the high watermark), as
// the DeleteRecords API does, and deletes the segments wholly below it. It returns the
// new log start offset; offsets past the high watermark give ErrInvalidOffset.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	end := l.endOffset.Load()
	if offset == -1 {
		offset = end
	}
	if offset < 0 || offset > end {
		return l.startOffset.Load(), fmt.Errorf("%w: %d, high watermark is %d", ErrInvalidOffset, offset, end)
	}
	if offset <= l.startOffset.Load() {
		return l.startOffset.Load(), nil
	}
	if err := l.writeOffsetFile(startOffsetFile, offset); err != nil {
		return l.startOffset.Load(), err
	}
	l.mu.Lock()
	l.startOffset.Store(offset)
	l.mu.Unlock()
	if offset == end && l.active().size > 0 {
		if _, err := l.roll(end, l.now()); err != nil {
			return offset, err
		}
	}
	for len(l.segs) > 1 && l.segs[1].base <= offset {
		if err := l.deleteOldest(); err != nil {
			return offset, err
		}
	}
	return offset, nil
}
