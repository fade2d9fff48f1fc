*** Settings ***
Documentation     Reconcile the invoices sent this month against the ledger.
...
...               Reads two CSV files, compares each invoice's amount with the amount
...               booked in the ledger, writes a report to ${OUTPUT DIR} and hands the
...               counts to Interlock. With ${strict} true, any mismatch fails the task.
Library           Collections
Library           OperatingSystem
Library           String
Library           interlock_rpa.Outputs

*** Variables ***
${invoices_csv}    ${CURDIR}/data/invoices.csv
${ledger_csv}      ${CURDIR}/data/ledger.csv
${strict}          ${False}

*** Tasks ***
Reconcile invoices
    &{invoiced}=    Read Amounts    ${invoices_csv}    amount
    &{booked}=      Read Amounts    ${ledger_csv}      booked_amount
    @{mismatches}=    Create List
    FOR    ${invoice}    ${amount}    IN    &{invoiced}
        ${in_ledger}=    Get From Dictionary    ${booked}    ${invoice}    default=${None}
        IF    $in_ledger is None
            Append To List    ${mismatches}    ${invoice}: ${amount} not in the ledger
        ELSE IF    $in_ledger != $amount
            Append To List    ${mismatches}    ${invoice}: ${amount} != ${in_ledger}
        END
    END
    ${matched}=    Evaluate    len($invoiced) - len($mismatches)
    ${report}=    Write Report    ${matched}    ${mismatches}
    Set Interlock Outputs    matched=${matched}    mismatches=${mismatches}
    ...    invoiced_total=${{ float(sum($invoiced.values())) }}    report=${report}
    IF    $strict and $mismatches
        Fail    Invoice total mismatch: ${{ "; ".join($mismatches) }}
    END

*** Keywords ***
Read Amounts
    [Documentation]    A dictionary of invoice id to amount (a Decimal) from a CSV file.
    [Arguments]    ${path}    ${amount_column}
    ${text}=    Get File    ${path}
    @{lines}=    Split To Lines    ${text}
    @{header}=    Split String    ${lines}[0]    ,
    ${column}=    Get Index From List    ${header}    ${amount_column}
    Should Be True    ${column} >= 0    ${path} has no column "${amount_column}"
    &{amounts}=    Create Dictionary
    FOR    ${line}    IN    @{lines}[1:]
        @{fields}=    Split String    ${line}    ,
        Set To Dictionary    ${amounts}    ${fields}[0]=${{ decimal.Decimal($fields[$column]) }}
    END
    RETURN    ${amounts}

Write Report
    [Documentation]    Writes reconciliation.txt into the output directory; returns its path.
    [Arguments]    ${matched}    ${mismatches}
    ${path}=    Set Variable    ${OUTPUT DIR}/reconciliation.txt
    Create File    ${path}    Invoices matched: ${matched}\nMismatches: ${{ len($mismatches) }}\n
    FOR    ${line}    IN    @{mismatches}
        Append To File    ${path}    - ${line}\n
    END
    RETURN    ${path}
