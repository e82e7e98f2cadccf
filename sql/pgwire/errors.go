package pgwire

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// pgError is a protocol-level error with its SQLSTATE.
type pgError struct {
	code string
	msg  string
}

func (e *pgError) Error() string { return e.msg }

// sendError answers an error as an ErrorResponse with a SQLSTATE; the position of a SQL
// error lets psql draw its caret.
func (c *conn) sendError(err error) {
	resp := &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "XX000", Message: err.Error()}
	var pe *pgError
	var qe *tsql.Error
	switch {
	case errors.As(err, &pe):
		resp.Code, resp.Message = pe.code, pe.msg
	case errors.As(err, &qe):
		resp.Message, resp.Hint = qe.Message, qe.Hint
		resp.Position = int32(qe.Position)
		resp.Code = sqlstate(qe)
	}
	c.be.Send(resp)
}

func sqlstate(e *tsql.Error) string {
	switch e.Kind {
	case tsql.KindRefused:
		return "42501" // insufficient_privilege
	case tsql.KindTimeout, tsql.KindCanceled:
		return "57014" // query_canceled
	case tsql.KindInvalid:
		switch {
		case e.Type == "Parser Error":
			return "42601" // syntax_error
		case e.Type == "Catalog Error" && strings.Contains(e.Message, "Table with name"):
			return "42P01" // undefined_table
		case e.Type == "Binder Error" && strings.Contains(e.Message, "column"):
			return "42703" // undefined_column
		case e.Type == "Catalog Error" && strings.Contains(e.Message, "Function"):
			return "42883" // undefined_function
		}
		return "42000"
	case tsql.KindExecution:
		if e.Type == "Out of Memory Error" {
			return "53200"
		}
		if e.Type == "Conversion Error" {
			return "22P02"
		}
	}
	return "XX000"
}
